"""What the executor tells its caller while it runs: plain values passed to an ``on_event`` callback.

The library never prints; ``tkplan run`` renders these as progress lines.
"""

from __future__ import annotations

import attrs

from tkplan.runtime._results import RunSummary, StepResult

__all__ = ["DataReady", "Event", "Heartbeat", "HistoryRecorded", "RunFinished", "RunStarted", "StepFinished",
           "StepStarted"]


@attrs.frozen
class RunStarted:
    """The run directory is locked and the schedule is about to run.

    Attributes:
        run_dir: the run directory.
        plan_hash: the plan.
        total: steps in the plan.
        done: steps already finished by earlier runs (``--resume``).
        adopted: steps that finished while no executor watched them, taken as they are.
        drift: the hardware differences accepted with ``--allow-drift`` (empty without drift).
        finished: the directory holds this run finished already: nothing runs, `RunFinished` follows.
        data_drift: the data change accepted with ``--allow-data-drift`` (empty without one).
    """

    run_dir: str
    plan_hash: str
    total: int
    done: int
    adopted: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()
    finished: bool = False
    data_drift: str = ""


@attrs.frozen
class DataReady:
    """The run's data is prepared (before the first step): what the steps train on.

    Attributes:
        source: what was read.
        features: the resolved feature columns, in order.
        dropped: ``(column, reason)`` for each column of the source that is not a feature.
        directory: where the prepared data and its ``meta.json`` (which keeps both lists) are.
    """

    source: str
    features: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...]
    directory: str


@attrs.frozen
class StepStarted:
    """A step was started; ``running`` includes it."""

    step_id: str
    running: tuple[str, ...]
    done: int
    total: int
    elapsed_s: float


@attrs.frozen
class StepFinished:
    """A step ended (or was skipped); ``done`` counts it."""

    result: StepResult
    running: tuple[str, ...]
    done: int
    total: int
    elapsed_s: float


@attrs.frozen
class Heartbeat:
    """Steps are still running: nothing started or ended for ``ExecutorSettings.heartbeat_s``."""

    running: tuple[str, ...]
    done: int
    total: int
    elapsed_s: float


@attrs.frozen
class RunFinished:
    """Every step has ended."""

    summary: RunSummary


@attrs.frozen
class HistoryRecorded:
    """The run's observations went to the history store, or could not (the run goes on either way).

    Attributes:
        store: the history store.
        run: the run's id in it.
        steps: how many steps were recorded (0 when ``error``).
        error: why nothing was recorded (the store locked, damaged, unwritable); empty when recorded.
    """

    store: str
    run: str
    steps: int
    error: str = ""


Event = RunStarted | DataReady | StepStarted | StepFinished | Heartbeat | HistoryRecorded | RunFinished
"""Any of the events, in the order: one `RunStarted`, one `DataReady` when the built-in trainer's data was
prepared, `StepStarted`/`StepFinished` pairs (a skipped step has
only its `StepFinished`) with `Heartbeat` between them during long steps, one `HistoryRecorded` when the run
records its history, one `RunFinished`."""
