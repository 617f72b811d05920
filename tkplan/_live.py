"""The live progress display of ``tkplan run`` on a terminal: done/total, elapsed, and each running step with
its elapsed time and, for a network, its epoch k/n and last validation loss.

It listens to the executor's events (`Progress` is an ``on_event`` callback); a network step's epochs come
from its ``steps/<id>/epochs.jsonl``, read when the display refreshes. Each step's end is printed above the
live area as the plain progress line, so the scrollback keeps the story. rich is imported only here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from tkplan.runtime import EPOCH_LOG

__all__ = ["Progress", "RunningStep", "last_epoch"]

_REFRESH_PER_S = 2
_TAIL_BYTES = 4096


@attrs.frozen
class RunningStep:
    """A row of the display: a running step, how long it has run, its last logged epoch (``None``: none)."""

    step_id: str
    elapsed_s: float
    epoch: int | None = None
    epochs: int | None = None
    val_loss: float | None = None


def last_epoch(step_dir: Path) -> dict[str, Any] | None:
    """The last epoch record a network step logged (`tkplan.runtime._context.log_epoch`), or ``None``."""
    try:
        with open(Path(step_dir) / EPOCH_LOG, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - _TAIL_BYTES))
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return record
    return None


class Progress:
    """``with Progress(render_line) as show: execute(..., on_event=show)``: the live display on stderr.

    Args:
        render_line: the plain line of an event (``tkplan._render.render_progress``), printed for starts of
            the run and ends of steps.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, render_line: Callable[[Any], str | None], clock: Callable[[], float] = time.monotonic) -> None:
        from rich.console import Console
        from rich.live import Live

        self.render_line = render_line
        self.clock = clock
        self.run_dir: Path | None = None
        self.started: dict[str, float] = {}
        self.done = self.total = 0
        self.begun = clock()
        self.console = Console(stderr=True, highlight=False)
        self.live = Live(console=self.console, get_renderable=self.renderable, refresh_per_second=_REFRESH_PER_S,
                         transient=True, redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> Progress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def __call__(self, event: Any) -> None:
        from tkplan.runtime import RunStarted, StepFinished, StepStarted

        if isinstance(event, RunStarted):
            self.run_dir, self.total, self.done = Path(event.run_dir), event.total, event.done
            self.begun = self.clock()
        elif isinstance(event, StepStarted):
            self.started[event.step_id] = self.clock()
            self.done, self.total = event.done, event.total
        elif isinstance(event, StepFinished):
            self.started.pop(event.result.step_id, None)
            self.done, self.total = event.done, event.total
        if isinstance(event, (RunStarted, StepFinished)):
            line = self.render_line(event)
            if line is not None:
                self.console.print(line, markup=False, soft_wrap=True)
        self.live.refresh()

    def rows(self) -> list[RunningStep]:
        """The running steps, longest running first."""
        now = self.clock()
        rows = []
        for step_id, start in sorted(self.started.items(), key=lambda item: item[1]):
            record = last_epoch(self.run_dir / "steps" / step_id) if self.run_dir else None
            rows.append(RunningStep(step_id, now - start, *((record.get("epoch"), record.get("epochs"),
                                                              record.get("val_loss")) if record else ())))
        return rows

    def renderable(self) -> Any:
        """What the live area shows now."""
        from rich.table import Table

        elapsed = _clock(self.clock() - self.begun)
        table = Table(title=f"[{self.done}/{self.total}] done · {len(self.started)} running · {elapsed}",
                      title_justify="left", box=None, show_header=bool(self.started), pad_edge=False)
        for name in ("step", "elapsed", "epoch", "val loss"):
            table.add_column(name, justify="left" if name == "step" else "right")
        for row in self.rows():
            epoch = f"{row.epoch}/{row.epochs}" if row.epoch is not None else ""
            loss = f"{row.val_loss:.4g}" if isinstance(row.val_loss, (int, float)) else ""
            table.add_row(row.step_id, _clock(row.elapsed_s), epoch, loss)
        return table


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
