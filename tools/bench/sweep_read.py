"""Reading a sweep file back, as ``tkplan run sweep.json`` does before it runs anything.

Usage: ``python tools/bench/sweep_read.py [--points N] [--file SWEEP.json] [--repeat R]``

The sweep is ``tools/bench/sweep.py``'s grid: ``families.lightgbm.num_leaves=range(2, 2 + N/10)`` × ten
``families.lightgbm.learning_rate`` values over the shipped default campaign (``laptop``), planned for this
machine's probed hardware and written as ``tkplan sweep -o`` writes it (default 200 points); ``--file`` reads
a sweep file written before instead, so that two versions of tkplan can be timed on the same file. Measured:
`read_runnable` of the file (every plan's hash verified, the schedule checked against the plans), ``R``
times. Printed: the file's size, its points and plans, each read's wall time and the best.

Target (issue 14): sweeps of 1,000 points read in seconds, not minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import tkplan
from tkplan.planner import CompileRequest, SweepPlan, compile_sweep, probe, read_runnable, sweep_to_json

RATES = "0.01,0.02,0.03,0.05,0.07,0.1,0.12,0.15,0.2,0.3"  # tkplan: ignore[constant]  the bench's grid


def _write_grid(points: int, path: Path) -> None:
    words = ("laptop", f"families.lightgbm.num_leaves=range(2,{2 + points // 10})",
             f"families.lightgbm.learning_rate={RATES}")
    sweep = compile_sweep(CompileRequest(words=words, hermetic=True), probe(), "probe", tkplan.__version__)
    path.write_text(sweep_to_json(sweep), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200, help="Grid size, a multiple of 10 (default 200).")
    parser.add_argument("--file", type=Path, help="Read this sweep file instead of compiling the grid.")
    parser.add_argument("--repeat", type=int, default=1, help="Reads to time (default 1).")
    args = parser.parse_args(argv)
    if args.points < 10 or args.points % 10:
        parser.error("--points must be a positive multiple of 10")
    path = args.file
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="tkplan-sweep-read-")) / "sweep.json"
        _write_grid(args.points, path)
    times = []
    for _ in range(max(1, args.repeat)):
        started = time.perf_counter()
        sweep = read_runnable(path)
        times.append(time.perf_counter() - started)
    if not isinstance(sweep, SweepPlan):
        parser.error(f"{path} is a plan, not a sweep file")
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, {len(sweep.points)} points, {len(sweep.plans)} plans, "
          f"{len(sweep.schedule.steps)} distinct steps")
    print(f"read_runnable: {' '.join(f'{t:.2f}' for t in times)} s (best {min(times):.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
