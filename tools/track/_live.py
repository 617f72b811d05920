"""Track a run in MLflow while it goes: an ``on_event`` callback for the executor (``tkplan run --track``).

The parent run is created (RUNNING) when the run starts, each step's run when the step ends, and at the end
one full sync settles everything (the parent's status, ``summary.json``). The same ``mlflow.json`` as
`tkplan.tools.track.sync` is kept, so ``tkplan track`` afterwards adds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from tkplan.tools.report import RunView, load_run
from tkplan.tools.track._sync import Tracker

__all__ = ["RunTracker"]


class RunTracker:
    """``execute(..., on_event=RunTracker(run_dir, uri))``; a `TrackingError` propagates from the call."""

    def __init__(self, run_dir: Path, uri: str | None = None) -> None:
        self.tracker = Tracker(Path(run_dir), uri)
        self.view: RunView | None = None

    @property
    def uri(self) -> str:
        """The tracking URI."""
        return self.tracker.uri

    def __call__(self, event: Any) -> None:
        from tkplan.runtime import RunFinished, RunStarted, StepFinished

        if isinstance(event, RunStarted):
            self.view = load_run(Path(event.run_dir))
            self.tracker.sync(self.view, only=())
        elif isinstance(event, StepFinished) and self.view is not None:
            self.view = attrs.evolve(self.view, results={**self.view.results, event.result.step_id: event.result})
            self.tracker.sync(self.view, only=(event.result.step_id,))
        elif isinstance(event, RunFinished):
            self.tracker.sync(load_run(self.tracker.run_dir))
