"""The leaderboard: each target's models ranked by the plan's metric, seeds aggregated.

A row is one model on one target: a family with one set of parameters, over its seeds. Its score is the
mean of the seeds' ``report.rank_by`` metric on ``report.split`` (± the sample standard deviation, with
``n`` the seeds that have the metric); a row without a score ranks last. The first row of a target is the
best. `per_seed` keeps one row per step instead.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tkplan.planner._plan import Plan, Step
from tkplan.runtime import StepResult

__all__ = ["Row", "leaderboard"]


@attrs.frozen
class Row:
    """One model on one target.

    Attributes:
        target, task, family: what it predicts, the task kind, the model family.
        variant: the parameters that tell this row from the family's other rows on the target (``""``
            when the family has one row there).
        step_ids: its steps (one per seed).
        seeds: their seeds.
        statuses: status → how many of its steps ended so (``"not run"`` for steps without a result).
        metric: the ranking metric's name; ``score`` its mean, ``sd`` its sample standard deviation (``None``
            for fewer than two values), ``n`` how many steps have it.
        metrics: every metric's mean over the steps that have it.
        best: the first row of its target.
    """

    target: str
    task: str
    family: str
    variant: str
    step_ids: tuple[str, ...]
    seeds: tuple[int, ...]
    statuses: Mapping[str, int]
    metric: str
    score: float | None
    sd: float | None
    n: int
    metrics: Mapping[str, float]
    best: bool = False

    @property
    def status(self) -> str:
        """``"ok"`` when every step ended ok, else the counts: ``"2 ok, 1 failed"``."""
        if set(self.statuses) == {"ok"}:
            return "ok"
        return ", ".join(f"{n} {s}" for s, n in self.statuses.items())


def leaderboard(plan: Plan, results: Mapping[str, StepResult], *, per_seed: bool = False) -> list[Row]:
    """Rank every model per target by the plan's ``report.rank_by`` metric on ``report.split``.

    Args:
        plan: the run's plan.
        results: step id → result, for the steps that ended.
        per_seed: one row per step (seed) instead of one per model.

    Returns:
        Rows grouped by target (in the campaign's order), best first, the best marked.
    """
    rank_by, split = plan.config["report"]["rank_by"], plan.config["report"]["split"]
    groups: dict[tuple[str, str, str], list[tuple[Step, Mapping[str, Any], str]]] = {}
    for step in plan.steps:
        result = results.get(step.id)
        held_out = (result.metrics.get(split) if result else None) or {}
        for target in step.targets:
            metrics = held_out.get(target, {}) if len(step.targets) > 1 and isinstance(held_out, Mapping) else held_out
            group = (target, step.family, step.id if per_seed else _params_key(step))
            groups.setdefault(group, []).append((step, metrics if isinstance(metrics, Mapping) else {},
                                               result.status if result else "not run"))
    tasks = {t: str(plan.config["data"]["tasks"].get(t, s.task)) for s in plan.steps for t in s.targets}
    variants = {} if per_seed else _variants(groups)
    rows = []
    for (target, family, key), members in groups.items():
        metric = str(rank_by.get(tasks[target]))
        scores = [float(m[metric]) for _, m, _ in members if _number(m.get(metric))]
        statuses: dict[str, int] = {}
        for _, _, status in members:
            statuses[status] = statuses.get(status, 0) + 1
        rows.append(Row(target, tasks[target], family, variants.get((target, family, key), ""),
                        tuple(s.id for s, _, _ in members), tuple(s.seed for s, _, _ in members), statuses, metric,
                        statistics.fmean(scores) if scores else None,
                        statistics.stdev(scores) if len(scores) > 1 else None, len(scores), _means(members)))
    order = {t: i for i, t in enumerate(dict.fromkeys(t for s in plan.steps for t in s.targets))}
    rows.sort(key=lambda r: (order[r.target], r.score is None, -(r.score or 0.0), r.family, r.step_ids))
    return [attrs.evolve(r, best=r.score is not None and (i == 0 or rows[i - 1].target != r.target))
            for i, r in enumerate(rows)]


def _params_key(step: Step) -> str:
    return json.dumps(step.params, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    """What ``json`` cannot write of frozen params: a read-only mapping as a dict, anything else as text."""
    return dict(value) if isinstance(value, Mapping) else str(value)


def _variants(groups: Mapping[tuple[str, str, str], Sequence[Any]]) -> dict[tuple[str, str, str], str]:
    """For a family with several parameter sets on one target: the parameters that differ between them."""
    by_family: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for key in groups:
        by_family.setdefault(key[:2], []).append(key)
    labels = {}
    for keys in by_family.values():
        if len(keys) < 2:
            continue
        params = {k: json.loads(_params_key(groups[k][0][0])) for k in keys}
        names = sorted({n for p in params.values() for n in p})
        differing = [n for n in names if len({json.dumps(p.get(n), sort_keys=True) for p in params.values()}) > 1]
        for k in keys:
            labels[k] = ", ".join(f"{n}={json.dumps(params[k].get(n))}" for n in differing) or groups[k][0][0].id
    return labels


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _means(members: Sequence[tuple[Step, Mapping[str, Any], str]]) -> dict[str, float]:
    names = dict.fromkeys(n for _, m, _ in members for n, v in m.items() if _number(v))
    means = {}
    for name in names:
        values = [float(m[name]) for _, m, _ in members if _number(m.get(name))]
        means[name] = statistics.fmean(values)
    return means
