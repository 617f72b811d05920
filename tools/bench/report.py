"""Time and size of ``tkplan report`` for a large run: a synthetic run directory of N steps (default 1,000).

Usage: ``python tools/bench/report.py [--steps N] [--keep DIR]``

The run directory is real in form — a compiled plan of N steps (four families of one's own × seeds), a
journal of their starts and ends on the plan's slots, a ``result.json`` per step with metrics, usage and
thread pools, 2 % of them failed with a traceback — but no step ran. Measured: reading the run directory,
writing the HTML report, the Markdown leaderboard and the Chrome trace; the sizes of the files written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FAMILIES = ("alpha", "beta", "gamma", "delta")
FAILED_EVERY = 50


def synthetic_run(root: Path, steps: int) -> Path:
    """Write a synthetic finished run directory of ``steps`` steps under ``root``; return it."""
    import json
    import random

    import tkplan
    from tkplan.planner import CompileRequest, compile_plan, plan_to_json, probe
    from tkplan.planner._convert import converter
    from tkplan.runtime import Allowance, RunSummary, StepResult

    runtime = {
        "display_name": "bench", "backends": ["numpy"], "thread_policy": "blas", "cost": 1,
        "threads": {"min": 1, "max": 1, "reserve": 0}, "gpu": "none",
        "isolation": {"mode": "process", "reason": "the report benchmark never runs its steps"},
        "vram_cap_mb": None, "tasks": ["regression"], "multi_target": False, "sequence": False, "nan_ok": True,
        "env": {},
    }
    seeds = -(-steps // len(FAMILIES))
    document = {
        "run": {"name": "bench-report", "threads": 2, "output_dir": "runs"},
        "campaign": {"families": list(FAMILIES), "targets": ["y"], "seeds": list(range(1, seeds + 1))},
        "data": {"tasks": {"y": "regression"}},
        "families": {f: {"entrypoint": "tkplan.tools.bench.executor_overhead:noop", "depth": i + 2,
                         "runtime": {**runtime, "display_name": f}} for i, f in enumerate(FAMILIES)},
    }
    project = root / "project"
    project.mkdir(parents=True)
    (project / "tkplan.yaml").write_text(json.dumps(document))
    plan = compile_plan(CompileRequest(cwd=project, env={}, hermetic=True), probe(), "probe", tkplan.__version__)
    run = root / "run"
    (run / "steps").mkdir(parents=True)
    (run / "plan.json").write_text(plan_to_json(plan))
    rng = random.Random(0)
    clock, slots = 1.8e9, [1.8e9] * plan.schedule.max_parallel
    journal = [{"event": "run_started", "time": clock, "plan_hash": plan.plan_hash, "pid": 1, "resume": False,
                "drift": []}]
    results = []
    for n, step_id in enumerate(plan.schedule.order[:steps]):
        step = plan.step(step_id)
        slot = min(range(len(slots)), key=slots.__getitem__)
        start, wall = slots[slot], rng.uniform(0.5, 30.0)
        slots[slot] = start + wall + 0.05
        failed = n % FAILED_EVERY == FAILED_EVERY - 1
        score = rng.gauss(0.05 * FAMILIES.index(step.family), 0.02)
        result = StepResult(
            step_id, "failed" if failed else "ok", "ValueError: bad input" if failed else "", Allowance.of(step),
            started_at=round(start, 3), wall_s=round(wall, 3), cpu_s=round(wall * 0.9, 3),
            peak_rss_mb=rng.uniform(200, 900), threads_seen=3,
            pools=({"internal_api": "openmp", "num_threads": 1}, {"internal_api": "openblas", "num_threads": 1}),
            metrics={} if failed else {s: {"rank_ic": score, "r2": score / 2, "rmse": 1 - score, "mae": 0.8}
                                       for s in ("val", "test")},
            error="Traceback (most recent call last):\n  ...\nValueError: bad input\n" if failed else None)
        (run / "steps" / step_id).mkdir()
        (run / "steps" / step_id / "result.json").write_text(json.dumps(converter.unstructure(result)))
        journal += [{"event": "step_started", "time": round(start, 3), "step": step_id, "attempt": 1},
                    {"event": "step_finished", "time": round(start + wall, 3), "step": step_id,
                     "status": result.status, "detail": result.detail, "wall_s": result.wall_s, "adopted": False}]
        results.append(result)
    journal.sort(key=lambda r: r["time"])
    summary = RunSummary.of(plan.plan_hash, str(run), tuple(results), max(slots) - clock)
    journal.append({"event": "run_finished", "time": max(slots), "counts": dict(summary.counts)})
    (run / "journal.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in journal))
    (run / "summary.json").write_text(json.dumps(converter.unstructure(summary)))
    return run


def _timed(fn: Any) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and its CPU seconds (on a shared machine the wall time varies with the load)."""
    import time

    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - start, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import tempfile

    from tkplan.tools.report import chrome_trace, load_run, render_html, render_markdown, timeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps in the synthetic run (default 1000)")
    parser.add_argument("--keep", type=Path, help="write the run directory here instead of a temporary one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tkplan-bench-") as tmp:
        root = args.keep or Path(tmp)
        run, made, _ = _timed(lambda: synthetic_run(root, args.steps))
        view, *read = _timed(lambda: load_run(run))
        html, *html_s = _timed(lambda: render_html(view))
        (run / "report.html").write_text(html)
        md, *md_s = _timed(lambda: render_markdown(view))
        trace, *trace_s = _timed(lambda: json.dumps(chrome_trace(view.plan, timeline(view.plan, view.journal))))
        print(f"synthetic run of {len(view.results)} steps written in {made:.1f} s ({run})")
        print("                                   wall s   CPU s   size")
        print(f"read the run directory:           {read[0]:6.2f}  {read[1]:6.2f}")
        for name, (wall, cpu), size in (
                ("HTML report (charts, templates):", html_s, f"{len(html.encode()) / 1e6:.2f} MB"),
                ("Markdown leaderboard:", md_s, f"{len(md.encode()) / 1e3:.1f} kB"),
                ("Chrome trace:", trace_s, f"{len(trace.encode()) / 1e6:.2f} MB")):
            print(f"{name:<34}{wall:6.2f}  {cpu:6.2f}   {size}")
        print(f"tkplan report --format html in all: {read[0] + html_s[0]:.2f} s wall, {read[1] + html_s[1]:.2f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
