"""``tkplan track``: log a run directory to MLflow, again and again without duplicates.

Exit codes: 0 synced; 2 bad invocation; 5 not a run directory (or a damaged one); 8 MLflow missing, its store
unreachable, or a value refused.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["track_cmd"]


@click.command("track")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--uri", help="MLflow tracking URI (default: sqlite:///RUN_DIR/mlflow.db, inside the run directory).")
def track_cmd(run_dir: str, uri: str | None) -> None:
    """Log RUN_DIR to MLflow: a parent run, a nested run per step; a second sync adds only what changed."""
    from tkplan.tools.track import sync

    report = sync(Path(run_dir), uri)
    steps = len(report.created) + len(report.updated) + len(report.unchanged)
    click.echo(f"MLflow {report.uri}: experiment {report.experiment_id}, parent run {report.parent_run_id} "
               f"({report.parent}); {steps} steps: {len(report.created)} created, {len(report.updated)} updated, "
               f"{len(report.unchanged)} unchanged")
