"""Makespan of ``tkplan run sweep.json``: a sweep's one schedule against its points' plans run one after another.

Usage: ``python tools/bench/sweep_run.py [--out DIR]``

The grid is the issue's: LightGBM ``num_leaves`` (2 values) × ``learning_rate`` (2 values) × an MLP width
axis (``families.mlp.hidden_layers``, 3 values) = 12 points, each training LightGBM and MLP on two targets of
``ci_fast``'s tiny synthetic panel, planned for this machine. Measured, each once, through the real command
line: (a) ``tkplan run sweep.json`` (the union: each distinct step once, one budget); (b) ``tkplan run`` of
each point's plan, one point after another (what a shell loop over the points does, each run with tkplan's
own thread budget). Printed: the steps each runs, the wall times and the ratio a / b.

The issue's comparison with Hydra's multirun (basic and joblib launchers) needs ``hydra-core`` and
``hydra-joblib-launcher``, which this script does not install; (b) is the same work without the sweep's
sharing, scheduled the way a launcher that runs one job after another does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("ci_fast", "campaign.families=[lightgbm,mlp]", "campaign.targets=[fwd_ret_5m,will_peak_5m]",
         "families.lightgbm.num_leaves=15,31", "families.lightgbm.learning_rate=0.05,0.1",
         "families.mlp.hidden_layers=choice([32],[64],[64,32])")  # tkplan: ignore[constant]  the bench's grid
TKPLAN = [sys.executable, "-c", "from tkplan.cli import run; run()"]


def _tkplan(cwd: Path, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([*TKPLAN, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"tkplan {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Work directory (default: a temporary one).")
    args = parser.parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="tkplan-sweep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plan_s = _tkplan(work, "sweep", "--hermetic", *WORDS, "-o", "sweep.json")
    sweep = json.loads((work / "sweep.json").read_text())
    union = sweep["schedule"]["plan"]
    total = sum(len(sweep["plans"][p["plan_hash"]]["steps"]) for p in sweep["points"])
    print(f"grid: {len(sweep['points'])} points, {total} steps in their plans, {len(union['steps'])} distinct "
          f"(planned in {plan_s:.1f} s); thread budget {union['schedule']['thread_budget']}, "
          f"{union['schedule']['max_parallel']} at once")
    sweep_s = _tkplan(work, "run", "sweep.json", "--out", "sweep-run", "-q")
    print(f"(a) tkplan run sweep.json: {sweep_s:.1f} s, {len(union['steps'])} steps")
    loop_s = 0.0
    for number, point in enumerate(sweep["points"]):
        plan_file = work / f"point-{number}.json"
        plan_file.write_text(json.dumps(sweep["plans"][point["plan_hash"]]))
        loop_s += _tkplan(work, "run", plan_file.name, "--out", f"point-{number}", "-q")
    print(f"(b) each point's plan, one after another: {loop_s:.1f} s, {total} steps")
    print(f"a / b = {sweep_s / loop_s:.2f} (target of the issue against Hydra: <= 0.8)")
    print(f"work directory: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
