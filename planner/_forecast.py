"""How long a plan is expected to take: its schedule played out on expected step times, and its lower bound. Pure.

A step's expected time comes from its ``expected_cpu_s`` and ``parallel_fraction`` derivations (a plan compiled
with history: seconds) or, in a cold plan, from its family's constant cost (relative units, not seconds), at
the threads the plan gives it. The schedule is played as the executor runs it: in ``schedule.order``, each
step starting as soon as its dependencies ended and the running steps leave it room (slots and threads).
The lower bound is the larger of the total single-thread work over the usable CPUs and the longest step at
the most threads it may have.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tkplan.planner._plan import Plan, Schedule, Step

__all__ = ["Forecast", "forecast", "forecast_steps"]


@attrs.frozen
class Forecast:
    """A plan's expected makespan and its lower bound.

    Attributes:
        makespan: the schedule played out on the expected step times.
        lower_bound: max(``work`` / ``cpus``, ``longest_s``).
        work: the steps' total single-thread work.
        cpus: the CPUs the bound divides by (the thread budget).
        longest: the step that takes longest at the most threads it may have.
        longest_s: that time.
        seconds: whether the figures are seconds (history) or relative cost units (a cold plan).
        steps: each step's expected wall time at its planned threads, by id.
    """

    makespan: float
    lower_bound: float
    work: float
    cpus: int
    longest: str
    longest_s: float
    seconds: bool
    steps: Mapping[str, float]


def forecast(plan: Plan) -> Forecast:
    """The forecast of a compiled plan."""
    return forecast_steps(plan.steps, plan.schedule, plan.config)


def forecast_steps(steps: Sequence[Step], schedule: Schedule, config: Mapping[str, Any]) -> Forecast:
    """The forecast of ``steps`` under ``schedule``; ``config`` gives the cold costs and thread clamps."""
    seconds = any(_derived(s, "expected_cpu_s") is not None for s in steps)
    work: dict[str, float] = {}
    parallel: dict[str, float] = {}
    for s in steps:
        traits = config["families"][s.family]["runtime"]
        cpu = _derived(s, "expected_cpu_s") if seconds else None
        work[s.id] = float(cpu if cpu is not None else traits["cost"])
        fraction = _derived(s, "parallel_fraction")
        parallel[s.id] = float(fraction) if fraction is not None else 1.0

    def wall(step: Step, threads: int) -> float:
        p = parallel[step.id]
        return work[step.id] * ((1 - p) + p / max(1, threads))

    expected = {s.id: wall(s, s.resources.threads) for s in steps}
    best = {}
    for s in steps:
        most = config["families"][s.family]["runtime"]["threads"]["max"] or schedule.thread_budget
        best[s.id] = wall(s, min(schedule.thread_budget, most)) if s.resources.device == "cpu" else expected[s.id]
    longest = max(best, key=lambda i: (best[i], i), default="")
    total = sum(work[s.id] for s in steps if s.resources.device == "cpu")
    bound = max(total / schedule.thread_budget, best.get(longest, 0.0))
    return Forecast(round(_play(steps, schedule, expected), 3), round(bound, 3), round(total, 3),
                    schedule.thread_budget, longest, round(best.get(longest, 0.0), 3), seconds,
                    {k: round(v, 3) for k, v in expected.items()})


def _derived(step: Step, key: str) -> Any:
    return next((d.value for d in step.derivations if d.key == key), None)


def _play(steps: Sequence[Step], schedule: Schedule, wall: Mapping[str, float]) -> float:
    """The makespan of ``schedule`` when each step takes ``wall[id]``: the executor's loop, simulated."""
    by_id = {s.id: s for s in steps}
    pending = [i for i in schedule.order if i in by_id]
    done: set[str] = set()
    running: list[tuple[float, str]] = []
    now = 0.0
    while pending or running:
        used = sum(by_id[i].resources.threads for _, i in running)
        for step_id in list(pending):
            step = by_id[step_id]
            if any(d in by_id and d not in done for d in step.depends_on):
                continue
            if len(running) < schedule.max_parallel and used + step.resources.threads <= schedule.thread_budget:
                heapq.heappush(running, (now + wall[step_id], step_id))
                used += step.resources.threads
                pending.remove(step_id)
        if not running:
            break  # what is left can never start (the executor refuses such a plan)
        now, finished = heapq.heappop(running)
        done.add(finished)
    return now


def forecast_sweep(plans: Sequence[Plan]) -> Forecast:
    """The expected total of running ``plans`` (a sweep's) as one schedule: their steps, each distinct digest
    once, longest first under the first plan's thread budget and the most slots any plan has."""
    steps: dict[str, Step] = {}
    families: dict[str, Any] = {}
    for plan in plans:
        families.update(plan.config["families"])
        named = {s.id: f"{s.id}@{s.digest[:8]}" for s in plan.steps}  # one id per distinct step of the sweep
        for s in plan.steps:
            after = tuple(named[d] for d in s.depends_on)
            steps.setdefault(s.digest, attrs.evolve(s, id=named[s.id], depends_on=after))
    config = {"families": families}
    budget = plans[0].schedule.thread_budget if plans else 1
    slots = max((p.schedule.max_parallel for p in plans), default=1)
    draft = Schedule(thread_budget=budget, max_parallel=slots, order=tuple(s.id for s in steps.values()))
    walls = forecast_steps(tuple(steps.values()), draft, config).steps
    order = tuple(sorted(walls, key=lambda i: (-walls[i], i)))
    return forecast_steps(tuple(steps.values()), attrs.evolve(draft, order=order), config)
