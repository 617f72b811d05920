"""The demo plan on the ``local`` engine and on the ``ray`` engine, in one run: what Ray costs.

Usage: ``python tools/bench/engines.py [PROFILES…] [key=value…] [--temp-dir DIR]``

Compiles the demo campaign for this machine (as ``tkplan demo`` does, hermetically), then runs it twice in
fresh run directories:
  * ``local``: the makespan (the whole ``execute`` call: data preparation, every step, the journal);
  * ``ray``: Ray's start time (a local instance sized to the plan, as the engine starts it), then the makespan
    after start on that instance.
It prints, side by side: Ray's start time; each engine's makespan; the makespan ratio ray / local after start
(target: at most 1.15); each step's wall time on ray less its wall time on local (median and largest), where a
step's wall time is its start to its end as the executor saw it; and each engine's own overhead per step: that
wall time less the time the step's child measured for itself (interpreter start, task submission and return;
on ray the first step per Ray worker also pays the worker's start). The load average before and after is
printed too: on a shared machine the makespans move with it.
"""

from __future__ import annotations

import sys
from typing import Any

TARGET_RATIO = 1.15
"""The makespan ratio ray / local after Ray's start that this benchmark checks against."""


def _compile(words: list[str]) -> Any:
    from pathlib import Path

    import tkplan
    from tkplan.planner import CompileRequest, compile_plan, probe

    return compile_plan(CompileRequest(words=tuple(words), env={}, cwd=Path.cwd(), hermetic=True), probe(), "probe",
                        tkplan.__version__)


def main(argv: list[str]) -> int:
    import statistics
    import tempfile
    import time
    from pathlib import Path

    from tkplan import execute
    from tkplan.runtime._ray import RayOptions, _connect

    temp_dir = None
    if "--temp-dir" in argv:
        at = argv.index("--temp-dir")
        temp_dir = argv[at + 1]
        del argv[at:at + 2]
    import os

    load_before = os.getloadavg()[0]
    plan = _compile(argv)
    with tempfile.TemporaryDirectory(prefix="tkbench-") as root:
        local = execute(plan, Path(root) / "local")
        began = time.monotonic()
        ray, _ = _connect(RayOptions(temp_dir=temp_dir), plan.hardware)
        start_s = time.monotonic() - began
        try:
            on_ray = execute(plan, Path(root) / "ray", engine="ray")
        finally:
            ray.shutdown()
        own = {name: _own_overhead(summary, Path(root) / name) for name, summary in (("local", local), ("ray", on_ray))}
    walls = {r.step_id: r.wall_s for r in local.results}
    overhead = [r.wall_s - walls[r.step_id] for r in on_ray.results
                if r.wall_s is not None and walls.get(r.step_id) is not None]
    ratio = on_ray.wall_s / local.wall_s
    rows = [
        ("steps", f"{len(plan.steps)} ({plan.schedule.max_parallel} at once, {plan.schedule.thread_budget} threads)"),
        ("statuses local / ray", f"{dict(local.counts)} / {dict(on_ray.counts)}"),
        ("ray start", f"{start_s:.2f} s"),
        ("makespan local", f"{local.wall_s:.2f} s"),
        ("makespan ray (after start)", f"{on_ray.wall_s:.2f} s"),
        ("ratio ray / local", f"{ratio:.3f} (target ≤ {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'MISSED'})"),
        ("step wall ray - local, median", f"{statistics.median(overhead):+.2f} s" if overhead else "-"),
        ("step wall ray - local, largest", f"{max(overhead):+.2f} s" if overhead else "-"),
        *((f"engine overhead per step, {name}", _spread(values)) for name, values in own.items()),
        ("load average before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0 if ratio <= TARGET_RATIO else 1


def _own_overhead(summary: Any, run_dir: Any) -> list[float]:
    """Each step's wall time as the executor saw it, less the wall time its child measured for itself."""
    import json

    values = []
    for result in summary.results:
        try:
            usage = json.loads((run_dir / "steps" / result.step_id / "outcome.json").read_text())["usage"]
        except (OSError, ValueError, KeyError):
            continue
        if result.wall_s is not None:
            values.append(result.wall_s - usage["wall_s"])
    return values


def _spread(values: list[float]) -> str:
    import statistics

    if not values:
        return "-"
    return f"median {statistics.median(values):.2f} s, largest {max(values):.2f} s"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
