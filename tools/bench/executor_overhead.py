"""Per-step overhead of the executor: an isolated no-op step next to ``python -c pass``, in one run.

Usage: ``python tools/bench/executor_overhead.py [--steps N] [--runs R]``

Measures, on this machine:
  * ``python -c pass`` — the median of R runs: the interpreter's own start-up, which every isolated step pays;
  * ``tkplan run`` of a plan of N no-op steps (a family of one's own whose trainer is `noop`), process
    isolation, one step at a time: the executor's wall time per step (the whole ``execute`` call over N,
    so the run directory, probe and journal are included), and the median step wall time as the executor
    recorded it (child started → child reaped);
  * the same N steps ``inproc`` (in the executor's worker, no interpreter per step), for reference.
The overhead per isolated step is the executor's time per step less ``python -c pass``.
Target: under 0.15 s per isolated step beyond interpreter start.
"""

from __future__ import annotations

from typing import Any

TARGET_S = 0.15
"""The overhead per isolated step this benchmark checks against (seconds beyond interpreter start)."""


def noop(ctx: Any) -> dict[str, Any]:
    """The trainer of the benchmark's steps: does nothing. (This module's imports stay light for the child.)"""
    return {"metrics": {}}


def _project(root: Any, steps: int, isolation: str) -> Any:
    import json

    runtime = {
        "display_name": "noop", "backends": ["numpy"], "thread_policy": "blas", "cost": 1,
        "threads": {"min": 1, "max": 1, "reserve": 0}, "gpu": "none",
        "isolation": {"mode": isolation, "reason": "the executor-overhead benchmark measures this mode"},
        "vram_cap_mb": None, "tasks": ["regression"], "multi_target": False, "sequence": False,
        "nan_ok": True, "env": {},
    }
    document = {
        "run": {"name": f"bench-{isolation}", "threads": 1, "max_parallel": 1, "output_dir": "runs"},
        "campaign": {"families": ["noop"], "targets": ["y"], "seeds": list(range(1, steps + 1))},
        "data": {"tasks": {"y": "regression"}},
        "families": {"noop": {"entrypoint": "tkplan.tools.bench.executor_overhead:noop", "runtime": runtime}},
    }
    root.mkdir(parents=True)
    (root / "tkplan.yaml").write_text(json.dumps(document))
    return root


def _run_plan(root: Any, steps: int, isolation: str) -> tuple[float, float]:
    """(executor wall seconds per step, median recorded step wall seconds) for one run of N steps."""
    import statistics
    import time

    import tkplan
    from tkplan import execute
    from tkplan.planner import CompileRequest, compile_plan, probe

    project = _project(root / isolation, steps, isolation)
    hardware = probe()
    plan = compile_plan(CompileRequest(cwd=project, env={}, hermetic=True), hardware, "probe", tkplan.__version__)
    start = time.perf_counter()
    summary = execute(plan, project / "run")
    wall = time.perf_counter() - start
    if not summary.ok:
        bad = next(r for r in summary.results if not r.ok)
        raise SystemExit(f"benchmark step {bad.step_id} ended {bad.status}: {bad.detail}\n{bad.error or ''}")
    return wall / steps, statistics.median(r.wall_s or 0.0 for r in summary.results)


def _python_pass(runs: int) -> float:
    import statistics
    import subprocess
    import sys
    import time

    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        if i:  # the first run warms the file cache
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="no-op steps in the plan (default 20)")
    parser.add_argument("--runs", type=int, default=10, help="runs of `python -c pass` (default 10)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tkplan-bench-") as tmp:
        root = Path(tmp)
        interpreter = _python_pass(args.runs)
        per_step, step_median = _run_plan(root, args.steps, "process")
        inproc_per_step, _ = _run_plan(root, args.steps, "inproc")
    overhead = per_step - interpreter
    print(f"python -c pass (median of {args.runs}):            {interpreter * 1000:7.1f} ms")
    print(f"tkplan run, {args.steps} isolated no-op steps, per step:   {per_step * 1000:7.1f} ms"
          f"   (median step wall, spawn → reaped: {step_median * 1000:.1f} ms)")
    print(f"overhead per isolated step beyond interpreter start: {overhead * 1000:7.1f} ms"
          f"   (target < {TARGET_S * 1000:.0f} ms: {'met' if overhead < TARGET_S else 'NOT met'})")
    print(f"tkplan run, {args.steps} in-process no-op steps, per step: {inproc_per_step * 1000:7.1f} ms")
    print(f"bytecode: {_bytecode_note()}")
    return 0


def _bytecode_note() -> str:
    """Whether a child reads the modules it imports from cached bytecode: without it, each child compiles them."""
    import importlib.util
    import os
    import sys

    import cattrs

    import tkplan.planner._plan

    cached = [os.path.exists(importlib.util.cache_from_source(m.__file__)) for m in (cattrs, tkplan.planner._plan)
              if m.__file__]
    state = "cached" if all(cached) else "NOT cached for some modules the child imports"
    flag = " (PYTHONDONTWRITEBYTECODE is set: none is written)" if sys.flags.dont_write_bytecode else ""
    return state + flag


if __name__ == "__main__":
    raise SystemExit(main())
