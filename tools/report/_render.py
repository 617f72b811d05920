"""Write a run's report: one self-contained HTML page, or the Markdown leaderboard, from Jinja2 templates.

The page carries its CSS and its charts (inline SVG) and loads nothing: it opens offline, and writing it
needs no browser.
"""

from __future__ import annotations

import datetime
from typing import Any

from tkplan.tools.report._board import Row, leaderboard
from tkplan.tools.report._run import RunView, log_tail
from tkplan.tools.report._usage import usage

__all__ = ["render_html", "render_markdown"]

_SHOWN = {"regression": ("rank_ic", "r2", "rmse", "mae"), "binary": ("roc_auc", "f1", "precision", "recall")}
_LOG_LINES = 20


def render_html(view: RunView, *, per_seed: bool = False) -> str:
    """The whole report of ``view`` as one HTML document.

    Raises:
        ExtraMissingError: Jinja2 or matplotlib is not installed (the extra ``report``).
    """
    _require("the HTML report", "jinja2", "matplotlib")
    from markupsafe import Markup

    from tkplan.tools.report._charts import STATUS_COLOURS, gantt_svg
    from tkplan.tools.report._sections import sections
    from tkplan.tools.report._timeline import timeline

    plan = view.plan
    bars = timeline(plan, view.journal)
    rows = [usage(step, view.results.get(step.id)) for step in (plan.step(s) for s in plan.schedule.order)]
    failures = [{"usage": u, "error": _tail(view.results[u.step_id].error), "log": log_tail(view.path, u.step_id,
                                                                                           _LOG_LINES)}
                for u in rows if u.step_id in view.results and u.status not in ("ok", "skipped")]
    context = {
        **_common(view, per_seed),
        "usage": rows,
        "failures": failures,
        "skipped": [u for u in rows if u.status == "skipped"],
        "gantt": Markup(gantt_svg(bars)) if bars else None,
        "lanes": len({b.lane for b in bars}),
        "colours": STATUS_COLOURS,
        "gpu_index": {g.uuid: g.index for g in plan.hardware.gpus},
        "sections": [(s, {k: Markup(v) if k.endswith("svg") and v else v for k, v in s.content.items()})
                     for s in sections(view)],
    }
    return _environment(autoescape=True).get_template("report.html.j2").render(context)


def render_markdown(view: RunView, *, per_seed: bool = False) -> str:
    """The leaderboard of ``view`` as Markdown: one table per target (for a sweep, the ablation leaderboard: one
    row per point, its swept values as columns, unless ``per_seed``).

    Raises:
        ExtraMissingError: Jinja2 is not installed (the extra ``report``).
    """
    _require("the Markdown leaderboard", "jinja2")
    if view.kind == "sweep" and not per_seed:
        return _environment(autoescape=False).get_template("sweep_leaderboard.md.j2").render(_sweep_common(view))
    return _environment(autoescape=False).get_template("leaderboard.md.j2").render(_common(view, per_seed))


def _sweep_common(view: RunView) -> dict[str, Any]:
    """What the sweep's Markdown leaderboard shows (`tkplan.tools.report._sweep_board`)."""
    from tkplan.tools.report._sweep_board import sweep_columns, sweep_leaderboard

    targets: dict[str, list[Any]] = {}
    for row in sweep_leaderboard(view):
        targets.setdefault(row.target, []).append(row)
    record = view.extras["sweep"]
    return {
        "plan": view.plan, "keys": sweep_columns(view), "sweep_hash": str(record.get("sweep_hash", "")),
        "points": len(record.get("points", ())), "split": view.plan.config["report"]["split"], "fmt": _fmt,
        "boards": [{"target": t, "task": rows[0].task, "metric": rows[0].metric,
                    "columns": [rows[0].metric, *(m for m in _SHOWN.get(rows[0].task, ()) if m != rows[0].metric)],
                    "rows": rows} for t, rows in targets.items()],
    }


def _common(view: RunView, per_seed: bool) -> dict[str, Any]:
    plan, results = view.plan, view.results
    board = leaderboard(plan, results, per_seed=per_seed)
    targets: dict[str, list[Row]] = {}
    for row in board:
        targets.setdefault(row.target, []).append(row)
    counts: dict[str, int] = {}
    for step_id in plan.schedule.order:
        status = results[step_id].status if step_id in results else "not run"
        counts[status] = counts.get(status, 0) + 1
    times = [r["time"] for r in view.journal]
    return {
        "view": view, "plan": plan, "kind": view.kind, "per_seed": per_seed,
        "boards": [{"target": t, "task": rows[0].task, "metric": rows[0].metric,
                    "columns": [rows[0].metric, *(m for m in _SHOWN.get(rows[0].task, ()) if m != rows[0].metric)],
                    "rows": rows} for t, rows in targets.items()],
        "split": plan.config["report"]["split"],
        "counts": counts,
        "started": _when(times[0]) if times else None,
        "span_s": times[-1] - times[0] if times else None,
        "hardware": plan.hardware,
        "fmt": _fmt,
        "clock": _clock,
    }


def _require(what: str, *modules: str) -> None:
    import importlib.util

    from tkplan.errors import ExtraMissingError

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ExtraMissingError(what, "report", module)


def _environment(*, autoescape: bool) -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("tkplan.tools.report", "templates"),
                              autoescape=autoescape, trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _when(epoch_s: float) -> str:
    return datetime.datetime.fromtimestamp(epoch_s, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _tail(text: str | None, lines: int = _LOG_LINES) -> str:
    return "\n".join((text or "").rstrip("\n").split("\n")[-lines:]) if text else ""
