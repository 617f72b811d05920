"""Planning speed of ``tkplan sweep``: a 1,000-point grid over the default campaign, in one process.

Usage: ``python tools/bench/sweep.py --plan-only [--points N]``

The grid is ``families.lightgbm.num_leaves=range(2, 2 + N/10)`` × ten ``families.lightgbm.learning_rate``
values over the shipped default campaign (``laptop``, nine CPU families × two targets), planned for this
machine's probed hardware. Printed: the whole sweep's wall time and plans per second; the peak resident
memory of the process (``ru_maxrss``) before and after; the size of the sweep file's text; and where the time
goes, per point: copying the merged layers and applying the overrides + resolving references + validating +
expanding the campaign (`resolve_point`) against deriving the steps and hashing the plan (`plan_resolved`).

Target: 1,000 points in seconds, not minutes. The makespan comparison with Hydra needs ``tkplan run
sweep.json`` and is not part of this script yet, so ``--plan-only`` is required.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import attrs

import tkplan
from tkplan.planner import CompileRequest, compile_sweep, probe, sweep_to_json
from tkplan.planner._compile import load_base, plan_resolved, resolve_point
from tkplan.planner._overrides import Override

RATES = "0.01,0.02,0.03,0.05,0.07,0.1,0.12,0.15,0.2,0.3"  # tkplan: ignore[constant]  the bench's grid


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan-only", action="store_true", help="Measure planning only (required for now).")
    parser.add_argument("--points", type=int, default=1000, help="Grid size, a multiple of 10 (default 1000).")
    args = parser.parse_args(argv)
    if not args.plan_only:
        parser.error("only --plan-only is measured so far: the makespan comparison needs `tkplan run sweep.json`")
    if args.points < 10 or args.points % 10:
        parser.error("--points must be a positive multiple of 10")
    words = ("laptop", f"families.lightgbm.num_leaves=range(2,{2 + args.points // 10})",
             f"families.lightgbm.learning_rate={RATES}")
    request = CompileRequest(words=words, hermetic=True)
    hardware = probe()
    rss_before = _rss_mb()
    start = time.perf_counter()
    sweep = compile_sweep(request, hardware, "probe", tkplan.__version__)
    elapsed = time.perf_counter() - start
    rss_after = _rss_mb()
    start = time.perf_counter()
    text = sweep_to_json(sweep)
    write_s = time.perf_counter() - start
    steps = sum(len(sweep.plans[p.plan_hash].steps) for p in sweep.points)
    print(f"grid: {' '.join(words)}")
    print(f"points {len(sweep.points)}  steps {steps}  distinct plans {len(sweep.plans)}")
    print(f"compile_sweep: {elapsed:.2f} s  = {len(sweep.points) / elapsed:.1f} plans/s  "
          f"({1000 * elapsed / len(sweep.points):.2f} ms per point)")
    print(f"peak RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after (+{rss_after - rss_before:.0f} MB)")
    print(f"sweep file: {len(text) / 1e6:.1f} MB of text, serialised in {write_s:.2f} s")
    base = load_base(attrs.evolve(request, words=("laptop",)))
    sample = [[Override(("families", "lightgbm", "num_leaves"), 2 + i, "sweep")] for i in range(50)]
    resolve_s = plan_s = 0.0
    for point in sample:
        t0 = time.perf_counter()
        resolved = resolve_point(base, point)
        t1 = time.perf_counter()
        plan_resolved(resolved, (), hardware, "probe", tkplan.__version__)
        resolve_s, plan_s = resolve_s + t1 - t0, plan_s + time.perf_counter() - t1
    n = len(sample)
    print(f"per point ({n} sampled): resolve_point {1000 * resolve_s / n:.2f} ms, "
          f"plan_resolved {1000 * plan_s / n:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
