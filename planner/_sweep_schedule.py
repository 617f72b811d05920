"""One schedule for every point of a sweep: the union of the points' steps, each distinct step once.

A step's identity is its ``digest`` (the sha256 of family, params, targets, task, seed, entrypoint, data, the
shared ``data`` and ``training`` settings, the tkplan version and its dependencies' digests): two points' steps
with one digest are the same work, one step of the union, run once and shared by both. A union step's id is
the step's id in its points' plans followed by the first `ID_DIGITS` hex digits of its digest
(``lightgbm.fwd_ret_5m.s42.3fa9c1d2e4b7``), so the same work has the same id in every sweep: a later sweep
with more values on an axis finds, in the run directory, the steps an earlier one ran.

The union is a plan (``tkplan.plan/1``, hashed like any plan) that the executor runs as it runs a plan:

- its steps are each distinct step once, as the first point that has it planned it (its *home*: the point's
  configuration and data are the ones the step runs with), its dependencies renamed to union ids;
- one budget, the machine's: the largest thread budget of the points, their smallest deadline, and as many
  slots as that budget holds at the smallest step's threads (no more than an explicit ``run.max_parallel``
  of a point, nor than fixed memory caps allow in ``limits.memory_threshold`` of the memory); a step whose
  memory cap was its point's share of the memory gets its share at the union's slots where that is smaller;
- started in the planner's own order (`start_order`: dependencies first, then the longest expected run);
- its configuration, inputs, provenance and data record are the first point's, ``data.tasks`` joined over
  every point (each step runs with its home's configuration, not this one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tkplan.planner._convert import converter, thaw
from tkplan.planner._plan import FORMAT, Derivation, Plan, Schedule, Step, compute_hash
from tkplan.planner._rules import start_order

__all__ = ["ID_DIGITS", "SharedStep", "SweepSchedule", "sweep_schedule"]

ID_DIGITS = 12  # tkplan: ignore[constant]  how much of its digest a union step's id carries
_SHARE_RULE = "memory_share"  # tkplan: ignore[constant]  the planner's rule for a memory cap that is a share


@attrs.frozen
class SharedStep:
    """One step of a sweep's union and the points that use it.

    Attributes:
        id: its id in the union (``<step id>.<digest[:12]>``).
        digest: its digest: what decides its result.
        home: the ``plan_hash`` of the first point's plan that has it; the step runs with that plan's
            configuration and data.
        step: its id in the points' plans.
        points: the indices of the points whose plans have it, in order.
    """

    id: str
    digest: str
    home: str
    step: str
    points: tuple[int, ...]


@attrs.frozen
class SweepSchedule:
    """The union of a sweep's steps as one plan, and which points share each step.

    Attributes:
        plan: the union plan (see the module docstring); its ``plan_hash`` is the schedule's hash.
        steps: one entry per step of ``plan``, in the plan's step order.
    """

    plan: Plan
    steps: tuple[SharedStep, ...]


def sweep_schedule(points: Sequence[str], plans: Mapping[str, Plan]) -> SweepSchedule:
    """The one schedule of a sweep: every distinct step of the points' plans once, under one budget.

    Args:
        points: each point's ``plan_hash``, in the sweep's order (at least one).
        plans: ``plan_hash`` → plan, for every hash in ``points``.

    Returns:
        The union plan and, per union step, its digest, home plan and the points that share it.
    """
    members: dict[str, list[int]] = {}
    chosen: dict[str, tuple[str, Step]] = {}
    for index, plan_hash in enumerate(points):
        plan = plans[plan_hash]
        for step in plan.steps:
            if step.digest not in chosen:
                chosen[step.digest] = (plan_hash, step)
            members.setdefault(step.digest, [])
            if not members[step.digest] or members[step.digest][-1] != index:
                members[step.digest].append(index)
    union_id = {digest: f"{step.id}.{digest[:ID_DIGITS]}" for digest, (_, step) in chosen.items()}
    steps = []
    for digest, (home, step) in chosen.items():
        digests = {s.id: s.digest for s in plans[home].steps}
        steps.append(attrs.evolve(step, id=union_id[digest],
                                  depends_on=tuple(union_id[digests[d]] for d in step.depends_on)))
    homes = {union_id[d]: plans[h] for d, (h, _) in chosen.items()}
    first = plans[points[0]]
    schedule, steps = _budget([plans[h] for h in dict.fromkeys(points)], steps, homes, first)
    tasks: dict[str, Any] = {}
    for plan_hash in dict.fromkeys(points):
        tasks.update(thaw(plans[plan_hash].config["data"]["tasks"]))
    config = thaw(first.config)
    config["data"]["tasks"] = tasks
    draft = Plan(FORMAT, "", first.inputs, first.hardware, config, first.provenance, tuple(steps), schedule, first.data)
    union = attrs.evolve(draft, plan_hash=compute_hash(converter.unstructure(draft)))
    shared = tuple(SharedStep(union_id[d], d, h, s.id, tuple(members[d])) for d, (h, s) in chosen.items())
    return SweepSchedule(union, shared)


def _budget(plans: Sequence[Plan], steps: Sequence[Step], homes: Mapping[str, Plan],
            first: Plan) -> tuple[Schedule, list[Step]]:
    """The union's schedule (one budget for all points) and its steps, their memory shares fitted to it."""
    budget = max(p.schedule.thread_budget for p in plans)
    smallest = min((s.resources.threads for s in steps), default=1)
    slots = max(1, min(budget // max(1, smallest), len(steps)))
    why = f"{budget} threads / {smallest} thread(s) of the smallest step, at most {len(steps)} steps"
    asked = [int(p.config["run"]["max_parallel"]) for p in plans if p.config["run"]["max_parallel"] != "auto"]
    if asked and min(asked) < slots:
        slots, why = min(asked), f"run.max_parallel = {min(asked)} of a point"
    memory_mb = first.hardware.memory_mb
    fixed = [(s.limits.memory_cap_mb, homes[s.id]) for s in steps
             if s.limits.memory_cap_mb is not None and _cap_rule(s) != _SHARE_RULE]
    if fixed:
        cap, home = max(fixed, key=lambda f: f[0] or 0)
        held = max(1, int(memory_mb * float(home.config["limits"]["memory_threshold"])) // max(1, cap or 1))
        if held < slots:
            slots, why = held, f"{memory_mb} MB usable memory holds {held} step(s) at the {cap} MB cap"
    fitted = [_fit_share(s, homes[s.id], memory_mb, slots) for s in steps]
    deadlines = [p.schedule.deadline_s for p in plans if p.schedule.deadline_s is not None]
    derivations = [Derivation("thread_budget", budget, "sweep_budget", f"the largest thread budget of the {len(plans)} "
                              "plans of the sweep's points: one budget for all of them"),
                   Derivation("max_parallel", slots, "sweep_budget", why)]
    if deadlines:
        derivations.append(Derivation("deadline_s", min(deadlines), "sweep_budget",
                                      "the smallest run deadline of the sweep's points"))
    runtime = {s.id: float(homes[s.id].config["families"][s.family]["runtime"]["cost"]) / s.resources.threads
               for s in fitted}
    schedule = Schedule(thread_budget=budget, max_parallel=slots, order=start_order(fitted, runtime),
                        derivations=tuple(derivations), deadline_s=min(deadlines) if deadlines else None)
    return schedule, fitted


def _cap_rule(step: Step) -> str | None:
    return next((d.rule for d in reversed(step.derivations) if d.key == "memory_cap_mb"), None)


def _fit_share(step: Step, home: Plan, memory_mb: int, slots: int) -> Step:
    """``step`` with its memory share taken at the union's ``slots`` where that is smaller than its point's."""
    cap = step.limits.memory_cap_mb
    if cap is None or _cap_rule(step) != _SHARE_RULE:
        return step
    threshold = float(home.config["limits"]["memory_threshold"])
    share = max(1, int(memory_mb * threshold / slots))
    if share >= cap:
        return step
    why = Derivation("memory_cap_mb", share, _SHARE_RULE, f"{threshold:g} × {memory_mb} MB usable memory / {slots} "
                     "steps at once in the sweep's one schedule")
    return attrs.evolve(step, limits=attrs.evolve(step.limits, memory_cap_mb=share),
                        derivations=(*step.derivations, why))
