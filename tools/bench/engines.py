"""The demo plan on the ``local`` engine and on the ``ray`` engine, in one run: what Ray costs.

Usage: ``python tools/bench/engines.py [PROFILES…] [key=value…] [--temp-dir DIR] [--rounds N]``

Compiles the demo campaign for this machine (as ``tkplan demo`` does, hermetically), then runs it on each engine
in fresh run directories, ``--rounds N`` times each in the order local, ray, ray, local, … (so that a load that
rises or falls on a shared machine weighs on both engines alike; the ratio is that of the median makespans):
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
    import os
    import statistics
    import tempfile
    from pathlib import Path

    temp_dir = _option(argv, "--temp-dir", None)
    rounds = int(_option(argv, "--rounds", "1"))
    load_before = os.getloadavg()[0]
    plan = _compile(argv)
    order = [name for i in range(rounds) for name in (("local", "ray") if i % 2 == 0 else ("ray", "local"))]
    runs: dict[str, list[Any]] = {"local": [], "ray": []}
    starts: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tkbench-") as root:
        for i, name in enumerate(order):
            run_dir = Path(root) / f"{name}-{i}"
            summary, start_s = _run(plan, run_dir, name, temp_dir)
            runs[name].append((summary, _own_overhead(summary, run_dir)))
            if start_s is not None:
                starts.append(start_s)
    local_walls = [s.wall_s for s, _ in runs["local"]]
    ray_walls = [s.wall_s for s, _ in runs["ray"]]
    ratio = statistics.median(ray_walls) / statistics.median(local_walls)
    walls = {r.step_id: r.wall_s for s, _ in runs["local"][:1] for r in s.results}
    overhead = [r.wall_s - walls[r.step_id] for s, _ in runs["ray"][:1] for r in s.results
                if r.wall_s is not None and walls.get(r.step_id) is not None]
    rows = [
        ("steps", f"{len(plan.steps)} ({plan.schedule.max_parallel} at once, {plan.schedule.thread_budget} threads)"),
        ("rounds (order)", f"{rounds} ({', '.join(order)})"),
        ("statuses local / ray", f"{dict(runs['local'][0][0].counts)} / {dict(runs['ray'][0][0].counts)}"),
        ("ray start", _spread(starts)),
        ("makespan local", ", ".join(f"{w:.2f} s" for w in local_walls)),
        ("makespan ray (after start)", ", ".join(f"{w:.2f} s" for w in ray_walls)),
        ("ratio ray / local (medians)",
         f"{ratio:.3f} (target ≤ {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'MISSED'})"),
        ("step wall ray - local, median", f"{statistics.median(overhead):+.2f} s" if overhead else "-"),
        ("step wall ray - local, largest", f"{max(overhead):+.2f} s" if overhead else "-"),
        *((f"engine overhead per step, {name}", _spread([v for _, own in done for v in own]))
          for name, done in runs.items()),
        ("load average before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0 if ratio <= TARGET_RATIO else 1


def _option(argv: list[str], name: str, default: str | None) -> Any:
    """Take ``name VALUE`` out of ``argv``; ``default`` when it is not there."""
    if name not in argv:
        return default
    at = argv.index(name)
    value = argv[at + 1]
    del argv[at:at + 2]
    return value


def _run(plan: Any, run_dir: Any, engine: str, temp_dir: str | None) -> tuple[Any, float | None]:
    """One run of ``plan`` on ``engine``; on ray, a fresh local instance, its start timed and shut down after."""
    import time

    from tkplan import execute
    from tkplan.runtime._ray import RayOptions, _connect

    if engine == "local":
        return execute(plan, run_dir), None
    began = time.monotonic()
    ray, _ = _connect(RayOptions(temp_dir=temp_dir), plan.hardware)
    start_s = time.monotonic() - began
    try:
        return execute(plan, run_dir, engine="ray"), start_s
    finally:
        ray.shutdown()


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
