"""``tkplan report``: a run's leaderboard on the terminal, as JSON or Markdown, its HTML report, its trace.

Exit codes: 0 written; 2 bad invocation (an unusable output path); 5 not a run directory, or a damaged plan,
journal or step result; 8 the extra ``report`` is not installed (``--format html`` or ``md``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["report_cmd"]


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md", "html"]), default="table",
              show_default=True, help="The leaderboard as a table, JSON or Markdown, or the whole HTML report.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (html: default RUN_DIR/report.html; others: stdout).")
@click.option("--per-seed", is_flag=True, help="One leaderboard row per seed instead of mean ± sd over seeds.")
@click.option("--trace", type=click.Path(dir_okay=False),
              help="Also write the run's timeline as Chrome trace events (open it in ui.perfetto.dev).")
def report_cmd(run_dir: str, fmt: str, output: str | None, per_seed: bool, trace: str | None) -> None:
    """Report on RUN_DIR: each target's models ranked by the plan's report.rank_by metric, seeds aggregated.

    For a sweep's run directory: the ablation leaderboard, a row per point with its swept values as columns.
    On a study's directory (`tkplan tune`): the best trial and its values, every trial (state, value, duration,
    values), the parameters' importances, then the best trial's run.

    --format html writes one self-contained page (leaderboard, timeline, each step's plan next to what it
    used, failures with their log); it opens offline.
    """
    from tkplan.tools.report import load_run

    view = load_run(Path(run_dir))
    if trace:
        from tkplan.tools.report import chrome_trace, timeline

        _write(trace, json.dumps(chrome_trace(view.plan, timeline(view.plan, view.journal)), separators=(",", ":")))
        click.echo(f"trace: {trace}", err=True)
    if fmt == "html":
        from tkplan.tools.report import render_html

        path = output or str(Path(run_dir) / "report.html")
        _write(path, render_html(view, per_seed=per_seed))
        click.echo(path)
        return
    if fmt == "md":
        from tkplan.tools.report import render_markdown

        text = render_markdown(view, per_seed=per_seed)
    elif view.kind == "sweep" and not per_seed:
        text = _sweep_board(view, fmt)
    elif fmt == "json":
        from tkplan.planner import converter
        from tkplan.tools.report import leaderboard

        rows = leaderboard(view.plan, view.results, per_seed=per_seed)
        text = json.dumps([{**converter.unstructure(r), "status": r.status, "statuses": dict(r.statuses)}
                           for r in rows], indent=1, sort_keys=True) + "\n"
    else:
        from tkplan._render import render_leaderboard, render_study
        from tkplan.tools.report import leaderboard

        text = render_leaderboard(leaderboard(view.plan, view.results, per_seed=per_seed), view.plan.config["report"],
                                  per_seed=per_seed) + "\n"
        if view.kind == "study":
            text = f"{render_study(view.extras['study'])}\n\nits best trial ({view.path}):\n{text}"
    if output:
        _write(output, text)
        click.echo(output)
    else:
        click.echo(text, nl=False)


def _sweep_board(view: Any, fmt: str) -> str:
    """A sweep's ablation leaderboard: a table per target, or JSON rows."""
    from tkplan.tools.report import sweep_columns, sweep_leaderboard

    rows = sweep_leaderboard(view)
    if fmt == "json":
        from tkplan.planner import converter

        return json.dumps([{**converter.unstructure(r), "status": r.status} for r in rows], indent=1,
                          sort_keys=True) + "\n"
    from tkplan._render import render_sweep_leaderboard

    return render_sweep_leaderboard(rows, sweep_columns(view), view.plan.config["report"]) + "\n"


def _write(path: str, text: str) -> None:
    from tkplan._io import write_text_atomic
    from tkplan.cli import UnusablePath

    try:
        write_text_atomic(Path(path), text)
    except OSError as exc:
        raise UnusablePath(path, exc) from None
