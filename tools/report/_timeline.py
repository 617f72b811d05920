"""The run's timeline from its journal: each attempt of each step, when it started and ended, on which lane.

A lane is where a step ran: a GPU (``GPU 0``) for a step planned on one, otherwise a CPU slot (``slot 1``,
``slot 2``...): each step takes the lowest-numbered slot free when it starts, so slots never overlap and
the number of slots in use shows how busy the machine was. A step the executor never saw end (it was
interrupted, or is still running) ends at the journal's last record. `chrome_trace` writes the timeline as
Chrome trace events, which Perfetto (ui.perfetto.dev) and chrome://tracing open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tkplan.planner._plan import Plan

__all__ = ["Bar", "chrome_trace", "timeline"]


@attrs.frozen
class Bar:
    """One attempt of one step on the timeline.

    Attributes:
        step_id, family: the step.
        attempt: 1 for its first start.
        lane: where it ran (``"slot 2"``, ``"GPU 0"``); ``lane_group``: ``"CPU"`` or ``"GPU"``.
        start, end: seconds since the run's first record.
        status: how it ended (``interrupted`` when the executor stopped first, ``running`` when the journal
            ends while it runs).
    """

    step_id: str
    family: str
    attempt: int
    lane: str
    lane_group: str
    start: float
    end: float
    status: str

    @property
    def duration(self) -> float:
        """Its length in seconds."""
        return self.end - self.start


def timeline(plan: Plan, journal: Sequence[Mapping[str, Any]]) -> list[Bar]:
    """The bars of every step attempt in ``journal``, in start order."""
    if not journal:
        return []
    origin, last = journal[0]["time"], journal[-1]["time"]
    steps = {s.id: s for s in plan.steps}
    gpu_index = {g.uuid: g.index for g in plan.hardware.gpus}
    open_: dict[str, tuple[Mapping[str, Any], str]] = {}
    free_slots: list[int] = []
    slots_used = 0
    bars = []

    def close(step_id: str, end: float, status: str) -> None:
        nonlocal free_slots
        record, lane = open_.pop(step_id)
        if lane.startswith("slot "):
            free_slots = sorted([*free_slots, int(lane.split()[1])])
        step = steps.get(step_id)
        bars.append(Bar(step_id, step.family if step else "?", int(record.get("attempt", 1)), lane,
                        "CPU" if lane.startswith("slot ") else "GPU", record["time"] - origin, end - origin, status))

    for record in journal:
        event, step_id = record["event"], str(record.get("step"))
        if event == "step_started" and step_id in steps:
            gpus = steps[step_id].resources.gpus
            if gpus:
                lane = "GPU " + ",".join(str(gpu_index.get(u, u)) for u in gpus)
            else:
                if not free_slots:
                    slots_used += 1
                    free_slots = [slots_used]
                lane = f"slot {free_slots.pop(0)}"
            open_[step_id] = (record, lane)
        elif event == "step_finished" and step_id in open_:
            close(step_id, record["time"], str(record.get("status", "?")))
        elif event in ("run_interrupted", "run_started"):
            for running in list(open_):
                close(running, record["time"], "interrupted")
    for running in list(open_):
        close(running, last, "running")
    return sorted(bars, key=lambda b: (b.start, b.lane))


def chrome_trace(plan: Plan, bars: Sequence[Bar]) -> dict[str, Any]:
    """The timeline as a Chrome trace (``{"traceEvents": [...]}``): a process per lane group, a thread per lane,
    a complete event (``ph: X``, microseconds) per bar with its status and the plan's allowance as args."""
    steps = {s.id: s for s in plan.steps}
    groups = sorted({b.lane_group for b in bars})
    lanes = sorted({(b.lane_group, b.lane) for b in bars}, key=lambda gl: (gl[0], _lane_number(gl[1])))
    pid = {g: i + 1 for i, g in enumerate(groups)}
    tid = {lane: i + 1 for i, lane in enumerate(lanes)}
    events: list[dict[str, Any]] = []
    for group in groups:
        events.append({"ph": "M", "name": "process_name", "pid": pid[group], "tid": 0, "args": {"name": group}})
    for group, lane in lanes:
        events.append({"ph": "M", "name": "thread_name", "pid": pid[group], "tid": tid[(group, lane)],
                       "args": {"name": lane}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": pid[group], "tid": tid[(group, lane)],
                       "args": {"sort_index": tid[(group, lane)]}})
    for bar in bars:
        step = steps.get(bar.step_id)
        args: dict[str, Any] = {"status": bar.status, "attempt": bar.attempt}
        if step is not None:
            args.update(target=step.target, seed=step.seed, threads=step.resources.threads,
                        memory_cap_mb=step.limits.memory_cap_mb, timeout_s=step.limits.timeout_s)
        events.append({"ph": "X", "name": bar.step_id, "cat": f"{bar.family},{bar.status}",
                       "pid": pid[bar.lane_group], "tid": tid[(bar.lane_group, bar.lane)],
                       "ts": round(bar.start * 1e6), "dur": max(1, round(bar.duration * 1e6)), "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"plan_hash": plan.plan_hash, "steps": len(plan.steps)}}


def _lane_number(lane: str) -> tuple[str, int]:
    name, _, number = lane.partition(" ")
    return (name, int(number)) if number.isdigit() else (lane, 0)
