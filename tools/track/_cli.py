"""``tkplan track``: log a run directory to MLflow, again and again without duplicates.

Exit codes: 0 synced; 2 bad invocation; 5 not a run directory (or a damaged one); 8 MLflow missing, its store
unreachable, or a value refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from tkplan.tools.track import SyncReport

__all__ = ["track_cmd"]


@click.command("track")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--uri", help="MLflow tracking URI (default: sqlite:///RUN_DIR/mlflow.db, inside the run directory).")
def track_cmd(run_dir: str, uri: str | None) -> None:
    """Log RUN_DIR to MLflow: a parent run, a nested run per step; a second sync adds only what changed.

    On a study directory (`tkplan tune`): a run for the study, a nested run per trial, each trial's steps
    nested in its run; after `tkplan tune --resume`, only the new trials are created.
    """
    from tkplan.tools.track import StudySyncReport, sync

    report = sync(Path(run_dir), uri)
    if isinstance(report, StudySyncReport):
        steps = [(o, s) for r in report.runs.values() for o, s in _outcomes(r)]
        click.echo(f"MLflow {report.uri}: experiment {report.experiment_id}, study run {report.study_run_id} "
                   f"({report.study}); {len(report.trials)} trials: {_counts(report.trials.values())}; "
                   f"{len(steps)} steps: {_counts(o for o, _ in steps)}")
        return
    steps = _outcomes(report)
    click.echo(f"MLflow {report.uri}: experiment {report.experiment_id}, parent run {report.parent_run_id} "
               f"({report.parent}); {len(steps)} steps: {_counts(o for o, _ in steps)}")


def _outcomes(report: SyncReport) -> list[tuple[str, str]]:
    """(outcome, step id) for each step of a run directory's sync."""
    return [(o, s) for o, ids in (("created", report.created), ("updated", report.updated),
                                   ("unchanged", report.unchanged)) for s in ids]


def _counts(outcomes: Iterable[str]) -> str:
    counted = Counter(outcomes)
    return ", ".join(f"{counted[o]} {o}" for o in ("created", "updated", "unchanged"))
