#!/usr/bin/env bash
# Launch one training job on the shared box.
set -euo pipefail

THREADS=${THREADS:-8}
GPU=${GPU_ID:-0}
export OMP_NUM_THREADS=1
export TOKENIZERS_PARALLELISM=false
OUT=${OUT_DIR:-runs/$(date +%Y%m%d)}
mkdir -p "$OUT"

echo "training with $THREADS threads on GPU $GPU"
python train_cli.py --data "${DATA:?set DATA}" --epochs "${EPOCHS:-30}" --out "$OUT" 2>&1 | tee "$OUT/train.log"
