"""Run the network families on this machine's GPU under an ``h100_full``-style plan and report what happened.

For each network family: the device and precision the plan chose, the VRAM cap it set, the peak GPU memory
the step allocated (``torch.cuda.max_memory_allocated``, which a cap set with
``set_per_process_memory_fraction`` bounds), epochs run, the median seconds per epoch after the first and the
first's (it also compiles and warms up), whether ``torch.compile`` ran, and the held-out score. The plan is
compiled for this machine (real probe) with the named profile and the overrides given, and run by the
executor like any other plan (each step in its own process)::

    python tools/bench/networks_gpu.py                      # h100_full, 3 epochs, all eleven families
    python tools/bench/networks_gpu.py kaggle_safe families.lstm.epochs=5

Exits 2 with a message on a machine without an NVIDIA GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import tkplan
from tkplan import execute
from tkplan.planner import CompileRequest, compile_plan, probe

NETWORKS = ("mlp", "cnn1d", "lstm", "transformer", "tab_cnn", "tab_lstm", "tab_transformer", "vae", "gan",
            "meta_learning", "multi_task")
DEFAULTS = ("campaign.targets=[fwd_ret_5m]", "campaign.seeds=[42]", "data.synthetic.symbols=32",
            "data.synthetic.timestamps=1000", *(f"families.{f}.epochs=3" for f in NETWORKS))
"""One target and replicate, a panel of 32 symbols × 1000 timestamps, three epochs per family."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("words", nargs="*", help="profile names and key=value overrides (default: h100_full)")
    parser.add_argument("--out", type=Path, help="run directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    hardware = probe()
    if not hardware.gpus:
        print("no NVIDIA GPU on this machine: nothing to measure", file=sys.stderr)
        return 2
    profiles = [w for w in args.words if "=" not in w] or ["h100_full"]
    overrides = [w for w in args.words if "=" in w]
    words = (*profiles, f"campaign.families=[{', '.join(NETWORKS)}]", *DEFAULTS, *overrides)
    plan = compile_plan(CompileRequest(words=words, cwd=Path.cwd(), env={}, hermetic=True), hardware, "probe",
                        tkplan.__version__)
    gpu = hardware.gpus[0]
    print(f"{gpu.name}, {gpu.memory_mb} MB, compute capability {gpu.compute_capability}, driver {hardware.gpu_driver}; "
          f"plan {plan.plan_hash[:12]} ({' '.join(profiles)}), {len(plan.steps)} steps, up to "
          f"{plan.schedule.max_parallel} at once")
    run_dir = args.out or Path(tempfile.mkdtemp(prefix="tkplan-networks-"))
    start = time.monotonic()
    summary = execute(plan, run_dir)
    wall = time.monotonic() - start
    rows = []
    for result in summary.results:
        step = plan.step(result.step_id)
        fit = dict(result.output.get("fit", {})) if result.output else {}
        test = dict(result.metrics.get("test", {})) if result.metrics else {}
        rows.append({
            "step": step.id, "status": result.status, "device": step.resources.device,
            "precision": step.resources.precision, "vram_cap_mb": step.limits.vram_cap_mb,
            "cuda_peak_mb": fit.get("cuda_peak_mb"), "epochs": fit.get("epochs_run"),
            "s_per_epoch": fit.get("seconds_per_epoch"), "first_epoch_s": fit.get("first_epoch_s"),
            "batch": fit.get("batch_size"),
            "compiled": fit.get("compiled"), "score": test.get("rank_ic", test.get("roc_auc")),
            "error": result.error.strip().splitlines()[-1] if result.error else None,
        })
    print(f"{'step':36} {'status':7} {'dev':5} {'prec':5} {'cap MB':>7} {'peak MB':>8} {'epochs':>6} "
          f"{'s/epoch':>8} {'1st s':>7} {'batch':>5} {'compiled':>8} {'score':>7}")
    for row in rows:
        print(f"{row['step']:36} {row['status']:7} {row['device']:5} {row['precision']:5} "
              f"{row['vram_cap_mb'] or '-':>7} {row['cuda_peak_mb'] if row['cuda_peak_mb'] is not None else '-':>8} "
              f"{row['epochs'] or '-':>6} {row['s_per_epoch'] or '-':>8} {row['first_epoch_s'] or '-':>7} "
              f"{row['batch'] or '-':>5} "
              f"{row['compiled']!s:>8} {round(row['score'], 3) if row['score'] is not None else '-':>7}")
        if row["error"]:
            print(f"    {row['error']}")
    within = [r for r in rows if r["cuda_peak_mb"] is not None and r["vram_cap_mb"]]
    print(f"wall {wall:.1f} s; peak ≤ cap for {sum(r['cuda_peak_mb'] <= r['vram_cap_mb'] for r in within)} of "
          f"{len(within)} GPU steps that reported; run dir {run_dir}")
    if args.json:
        args.json.write_text(json.dumps({"hardware": gpu.name, "wall_s": wall, "rows": rows}, indent=1))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
