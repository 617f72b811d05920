"""The report's optional sections: each a function of the run that returns its content, or ``None`` when the
run has nothing for it. A section renders with the template ``templates/<name>.html.j2``.

A sweep's section plots the ranking metric against each swept key (``sweep.json``); a study's the
optimisation history and the parameters' importances (``study.json``); see `tkplan.tools.report._run` for
those files' shapes. Adding a section is adding a function here and its template.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tkplan.tools.report._run import RunView

__all__ = ["SECTIONS", "Section", "sections"]


@attrs.frozen
class Section:
    """One optional section: its template's name, its title, and what the template shows."""

    name: str
    title: str
    content: Mapping[str, Any]


def _sweep(view: RunView) -> Section | None:
    from tkplan.tools.report._charts import sweep_svg
    from tkplan.tools.report._sweep_board import sweep_columns, sweep_leaderboard

    sweep = view.extras.get("sweep")
    if not sweep:
        return None
    rank_by, split = view.plan.config["report"]["rank_by"], view.plan.config["report"]["split"]
    tasks, steps = view.plan.config["data"]["tasks"], {s.id: s for s in view.plan.steps}
    points = []
    for point in sweep.get("points", ()):
        scores: dict[str, list[float]] = {}
        for step_id in point.get("steps", ()):
            result, step = view.results.get(step_id), steps.get(step_id)
            if result is None or step is None:
                continue
            value = (result.metrics.get(split) or {}).get(rank_by[tasks[step.target]])
            if isinstance(value, (int, float)):
                scores.setdefault(step.target, []).append(value)
        points.append({"values": point.get("values", {}),
                       "scores": {t: sum(v) / len(v) for t, v in scores.items()}})
    metric = "/".join(dict.fromkeys(rank_by[tasks[t]] for p in points for t in p["scores"])) or "score"
    boards: dict[str, list[Any]] = {}
    for row in sweep_leaderboard(view):
        boards.setdefault(row.target, []).append(row)
    return Section("sweep", "Sweep", {"svg": sweep_svg(sweep.get("axes", {}), points, f"{split} {metric}"),
                                      "points": points, "axes": sweep.get("axes", {}), "keys": sweep_columns(view),
                                      "split": split, "metric": metric,
                                      "boards": [{"target": t, "metric": rows[0].metric, "rows": rows}
                                                 for t, rows in boards.items()]})


def _study(view: RunView) -> Section | None:
    from tkplan.tools.report._charts import study_svgs

    study = view.extras.get("study")
    if not study:
        return None
    trials = sorted(study.get("trials", ()), key=lambda t: t.get("number", 0))
    direction, metric = study.get("direction", "maximize"), study.get("metric", "value")
    history, importances = study_svgs(trials, study.get("importances") or {}, direction, metric)
    done = [t for t in trials if t.get("value") is not None]
    best = (max if direction == "maximize" else min)(done, key=lambda t: t["value"]) if done else None
    keys = list(dict.fromkeys(k for t in trials for k in t.get("params", {})))
    rows = [{"number": t.get("number"), "state": str(t.get("state", "")).lower(), "value": t.get("value"),
             "duration_s": t.get("duration_s"), "params": [t.get("params", {}).get(k, "") for k in keys],
             "detail": "" if t.get("state") == "COMPLETE" else t.get("detail", "")} for t in trials]
    return Section("study", "Study", {"history_svg": history, "importances_svg": importances, "best": best,
                                      "trials": len(trials), "direction": direction, "metric": metric,
                                      "columns": [k.rsplit(".", 1)[-1] for k in keys], "rows": rows})


SECTIONS: tuple[Callable[[RunView], Section | None], ...] = (_sweep, _study)


def sections(view: RunView) -> list[Section]:
    """The optional sections the run has content for, in order."""
    return [s for s in (build(view) for build in SECTIONS) if s is not None]
