"""The ablation leaderboard of a sweep's run: per target, one row per point, its axis values as columns.

A row is one family's steps on one target at one point of the sweep (its values of every swept key but
``run.base_seed``, which, like the plan's own seeds, is aggregated: the row's score is the mean of its
steps' ``report.rank_by`` metric on ``report.split``, ± the sample standard deviation, ``n`` the steps that
have it). Points whose steps for a family are the same steps (shared: the family does not depend on the key
that tells them apart) make one row, ``*`` in the columns where their values differ. Rows rank by score
within their target, best first; a row without a score ranks last.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tkplan.tools.report._board import _means, _number
from tkplan.tools.report._run import RunView

__all__ = ["ANY_VALUE", "SEED_KEY", "SweepRow", "sweep_columns", "sweep_leaderboard"]

SEED_KEY = "run.base_seed"  # tkplan: ignore[constant]  the swept key that is aggregated, not a column
ANY_VALUE = "*"  # tkplan: ignore[constant]  a merged row's value where its points differ


@attrs.frozen
class SweepRow:
    """One family on one target at one point (or at several points that share its steps).

    Attributes:
        target, task, family: what it predicts, the task kind, the model family.
        values: swept key → the point's value as text (`ANY_VALUE` where the row's points differ).
        points: the numbers of the sweep's points the row stands for.
        step_ids: its steps.
        seeds: their seeds.
        statuses: status → how many of its steps ended so (``"not run"`` for steps without a result).
        metric: the ranking metric's name; ``score`` its mean, ``sd`` its sample sd, ``n`` how many steps have it.
        metrics: every metric's mean over its steps.
        best: the first row of its target.
    """

    target: str
    task: str
    family: str
    values: Mapping[str, str]
    points: tuple[int, ...]
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


def sweep_columns(view: RunView) -> list[str]:
    """The swept keys a sweep's leaderboard shows as columns (every axis key but ``run.base_seed``)."""
    return [k for k in (view.extras.get("sweep") or {}).get("axes", {}) if k != SEED_KEY]


def sweep_leaderboard(view: RunView) -> list[SweepRow]:
    """The ablation leaderboard of a sweep's run directory (``sweep.json`` there), best first per target.

    Returns:
        Rows grouped by target (in the order the steps name them), ranked by score, the best marked; no rows
        for a run directory that holds no sweep.
    """
    record = view.extras.get("sweep") or {}
    keys = sweep_columns(view)
    plan = view.plan
    steps = {s.id: s for s in plan.steps}
    report = plan.config["report"]
    tasks = {t: str(task) for t, task in plan.config["data"]["tasks"].items()}
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for number, point in enumerate(record.get("points", ())):
        values = {k: _text(point.get("values", {}).get(k)) for k in keys}
        for step_id in point.get("steps", ()):
            step = steps.get(step_id)
            if step is None:
                continue
            for target in step.targets:
                group = groups.setdefault((target, step.family, json.dumps(values, sort_keys=True)),
                                          {"values": values, "points": [], "steps": {}})
                if not group["points"] or group["points"][-1] != number:
                    group["points"].append(number)
                group["steps"][step_id] = None
    merged: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for (target, family, _), group in groups.items():
        into = merged.setdefault((target, family, tuple(group["steps"])), {"values": [], "points": []})
        into["values"].append(group["values"])
        into["points"] += group["points"]
    rows = []
    for (target, family, ids), group in merged.items():
        values = {k: _one(v[k] for v in group["values"]) for k in keys}
        rows.append(_row(view, target, tasks.get(target, steps[ids[0]].task), family, values,
                         tuple(sorted(group["points"])), ids, report))
    order = {t: i for i, t in enumerate(dict.fromkeys(t for s in plan.steps for t in s.targets))}
    rows.sort(key=lambda r: (order[r.target], r.score is None, -(r.score or 0.0), r.family, r.points))
    return [attrs.evolve(r, best=r.score is not None and (i == 0 or rows[i - 1].target != r.target))
            for i, r in enumerate(rows)]


def _row(view: RunView, target: str, task: str, family: str, values: Mapping[str, str], points: tuple[int, ...],
         ids: Sequence[str], report: Mapping[str, Any]) -> SweepRow:
    metric = str(report["rank_by"].get(task))
    members = []
    statuses: dict[str, int] = {}
    for step_id in ids:
        step, result = view.plan.step(step_id), view.results.get(step_id)
        held_out = (result.metrics.get(report["split"]) if result else None) or {}
        metrics = held_out.get(target, {}) if len(step.targets) > 1 and isinstance(held_out, Mapping) else held_out
        members.append((step, metrics if isinstance(metrics, Mapping) else {}, result.status if result else "not run"))
        status = result.status if result else "not run"
        statuses[status] = statuses.get(status, 0) + 1
    scores = [float(m[metric]) for _, m, _ in members if _number(m.get(metric))]
    return SweepRow(target, task, family, values, points, tuple(ids), tuple(s.seed for s, _, _ in members), statuses,
                    metric, statistics.fmean(scores) if scores else None,
                    statistics.stdev(scores) if len(scores) > 1 else None, len(scores), _means(members))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _one(values: Any) -> str:
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else ANY_VALUE
