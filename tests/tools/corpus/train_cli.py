"""Command-line training script: argparse flags, then a loop over seeds."""

import argparse
import os
import random
import sys

import numpy as np
import torch


def seed_everything(seed, workers=0):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return workers


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="train the return model")
    parser.add_argument("--data", required=True, help="parquet file")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", default="runs/latest", help="output directory")
    parser.add_argument("--dry-run", action="store_true", help="parse only")
    return parser.parse_args(argv)


def loader_workers(requested):
    workers = requested or 8
    return min(workers, os.cpu_count() or 1)


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run:
        return 0
    for seed in args.seeds:
        seed_everything(seed=7, workers=4)
        print(f"seed {seed}: training for {args.epochs} epochs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
