"""What the executor tells its caller while it runs: plain values passed to an ``on_event`` callback.

The library never prints; ``tkplan run`` renders these as progress lines.
"""

from __future__ import annotations

import attrs

from tkplan.runtime._results import RunSummary, StepResult

__all__ = ["Event", "Heartbeat", "RunFinished", "RunStarted", "StepFinished", "StepStarted"]


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


Event = RunStarted | StepStarted | StepFinished | Heartbeat | RunFinished
"""Any of the events, in the order: one `RunStarted`, `StepStarted`/`StepFinished` pairs (a skipped step has
only its `StepFinished`) with `Heartbeat` between them during long steps, one `RunFinished`."""
