"""The leaderboard of a run: every step's held-out metrics, ranked per target by the profile's metric.

The ranking metric per task kind comes from the plan (``report.rank_by``, e.g. ``rank_ic`` for regression
and ``roc_auc`` for binary targets); a step without that metric (it failed, or the metric was undefined)
ranks last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tkplan.errors import RunDirError
from tkplan.planner._convert import converter
from tkplan.planner._plan import Plan, read_plan
from tkplan.runtime._results import StepResult

__all__ = ["Entry", "leaderboard", "load_run"]


@attrs.frozen
class Entry:
    """One row of the leaderboard: a step's result on one target."""

    target: str
    task: str
    family: str
    step_id: str
    status: str
    score: float | None
    metrics: Mapping[str, Any]


def load_run(run_dir: Path) -> tuple[Plan, list[StepResult]]:
    """The plan of ``run_dir`` and the results of the steps that have ended.

    Raises:
        RunDirError: not a run directory, or a ``result.json`` is damaged (the message names it).
        PlanError: its plan.json is not a valid plan.
    """
    plan_file = run_dir / "plan.json"
    if not plan_file.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no plan.json); give the directory `tkplan run` wrote")
    plan = read_plan(plan_file)
    results = []
    for step_id in plan.schedule.order:
        path = run_dir / "steps" / step_id / "result.json"
        if path.exists() or path.is_symlink():
            results.append(_read_result(path, step_id))
    return plan, results


def _read_result(path: Path, step_id: str) -> StepResult:
    """A step's ``result.json``, checked: readable JSON of a `StepResult` of that step."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        result = converter.structure(data, StepResult)
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read the step's result: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise RunDirError(f"{path}: not a step result (damaged or truncated: {_first(exc)}); "
                          "the run directory was damaged or edited") from None
    except Exception as exc:  # cattrs raises exception groups for a wrong structure
        raise RunDirError(f"{path}: not a step result ({_first(exc)}); "
                          "the run directory was damaged or edited") from None
    if result.step_id != step_id:
        raise RunDirError(f"{path}: the result of step {result.step_id!r}, not of {step_id!r}")
    return result


def _first(exc: BaseException) -> str:
    from tkplan.planner._convert import first_error

    return first_error(exc)[:200]


def leaderboard(plan: Plan, results: Sequence[StepResult]) -> list[Entry]:
    """Rank every step on each of its targets by the plan's ``report.rank_by`` metric on ``report.split``."""
    rank_by, split = plan.config["report"]["rank_by"], plan.config["report"]["split"]
    tasks = plan.config["data"]["tasks"]
    by_id = {r.step_id: r for r in results}
    entries = []
    for step in plan.steps:
        result = by_id.get(step.id)
        status = result.status if result else "not run"
        held_out = (result.metrics.get(split, {}) if result else {}) or {}
        for target in step.targets:
            metrics = held_out.get(target, {}) if len(step.targets) > 1 and isinstance(held_out, Mapping) else held_out
            metrics = metrics if isinstance(metrics, Mapping) else {}
            task = str(tasks.get(target, step.task))
            score = metrics.get(rank_by.get(task))
            score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
            entries.append(Entry(target, task, step.family, step.id, status, score, dict(metrics)))
    return sorted(entries, key=lambda e: (e.target, e.score is None, -(e.score or 0.0), e.step_id))
