"""Where steps run: the `Engine` interface, and the registry that names engines (``local``, ``ray``).

The executor loop (``tkplan.runtime._executor``) decides *what* runs *when*: order, admission, dependencies,
the journal. An engine decides *how* a step runs and is watched: it starts a `Job`, enforces its limits, and
reports each end as a `JobEnd` classified with ``tkplan.runtime._classify``. A new engine is one module with
an `Engine` subclass and one `register_engine` call; nothing else changes.

The child side is shared by every engine: ``python -m tkplan.runtime._child RUN_DIR STEP_ID`` reads
``steps/<id>/step.json`` and writes ``steps/<id>/outcome.json``.

An engine shipped by another package is found through the ``tkplan.engines`` entry-point group
(``ray = "tkplan.runtime._ray:RayEngine"`` in tkplan's own ``pyproject.toml``; another package declares its
own): ``tkplan run --engine NAME`` then uses it with no change to tkplan, and the module is imported only when
chosen. ``tkplan.runtime._ray`` is the Ray engine.
"""

from __future__ import annotations

import abc
import importlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tkplan.planner._convert import JsonMap, freeze
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._plan import Plan, Step
from tkplan.runtime._settings import ExecutorSettings

__all__ = ["DEFAULT_ENGINE", "ENTRY_POINT_GROUP", "Engine", "Job", "JobEnd", "engine_names", "get_engine",
           "register_engine"]


@attrs.frozen
class Job:
    """One start of one step, as the executor hands it to an engine.

    Attributes:
        step: the plan's step.
        run_dir: the run directory.
        step_dir: ``run_dir/steps/<id>``, holding ``step.json`` for the child.
        timeout_s: the wall time allowed: the step's timeout, or less when the run's deadline is nearer.
        attempt: 1 for the first start of the step.
        token: the executor invocation's marker (``tkplan.runtime._ours``): every process of the job must
            carry it in its environment as ``TKPLAN_RUN_TOKEN``, with ``TKPLAN_STEP_ID``.
    """

    step: Step
    run_dir: Path
    step_dir: Path
    timeout_s: float
    attempt: int = 1
    token: str = ""


@attrs.frozen
class JobEnd:
    """How a job ended, as the engine saw it.

    Attributes:
        step_id: the step.
        status: ``ok``, ``failed``, ``timeout``, ``oom``, ``crashed``, or ``cancelled`` (stopped by `Engine.cancel`;
            the executor does not count it as finished).
        detail: one line on why.
        wall_s: start to end.
        cpu_s: CPU time of the step's processes, when known.
        peak_rss_mb: the highest RSS of the step's processes seen, when known.
        threads_seen: the most threads of the step's processes seen at once, when known.
        outcome: what the child reported (``outcome.json``), or ``None`` if it wrote nothing.
    """

    step_id: str
    status: str
    detail: str
    wall_s: float
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    threads_seen: int | None = None
    outcome: JsonMap | None = attrs.field(default=None, converter=lambda v: None if v is None else freeze(v))


class Engine(abc.ABC):
    """Runs jobs and reports how they end. One instance serves one run directory, then is closed.

    Args:
        run_dir: the run directory.
        settings: polling period, kill grace, orphan wait.
        options: the engine's own options (``tkplan run --address`` gives the Ray engine ``address``); an
            engine refuses one it does not know with a `ValueError`.

    The executor calls `prepare` first, then, with the run directory locked, `release_orphans` (on
    ``--resume``), `start`/`poll`/`cancel` as the schedule goes, and `close` once, whatever happened.
    Subclasses implement `start`, `poll`, `cancel`, `release_orphans` and `close`, and may override
    `accepts`. An engine enforces each job's ``timeout_s`` and ``step.limits.memory_cap_mb`` itself, and
    never raises for a job's failure: every started job comes back exactly once from `poll`.

    .. versionadded:: 0.1
    """

    def __init__(self, run_dir: Path, settings: ExecutorSettings, options: Mapping[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.options = dict(options or {})

    def prepare(self, plan: Plan, hardware: HardwareSpec | None) -> HardwareSpec:
        """Get ready to run ``plan``; return the hardware its steps will run on, for the drift check.

        Args:
            plan: the plan about to run.
            hardware: the caller's spec of that hardware, if it has one (default: probe this machine).

        Raises:
            PlanError: the engine cannot run this plan (the local engine and a cluster's plan).
            EngineError: where steps run cannot be reached or started.
        """
        if hardware is not None:
            return hardware
        from tkplan.planner._probe import probe

        return probe()

    def accepts(self, step: Step) -> bool:
        """Whether the engine can start this step now, beyond the plan's admission rule (default: yes)."""
        return True

    @abc.abstractmethod
    def start(self, job: Job) -> Mapping[str, Any]:
        """Start ``job`` and return JSON-ready facts for the journal's ``step_started`` record.

        The facts must let `release_orphans` find the job's processes after the executor died.
        """

    @abc.abstractmethod
    def poll(self, timeout_s: float) -> list[JobEnd]:
        """Wait up to ``timeout_s`` for jobs to end, enforcing limits meanwhile; return those that ended."""

    @abc.abstractmethod
    def cancel(self, step_id: str) -> None:
        """Stop a running job; it comes back from `poll` with status ``cancelled``."""

    @abc.abstractmethod
    def release_orphans(self, started: Sequence[Mapping[str, Any]], *, tokens: Sequence[str] = ()) -> None:
        """Stop whatever a dead executor's jobs left running on this run directory (``--resume``).

        Never signal a process that is not provably the run's own (a journaled pid may have been reused).

        Args:
            started: the ``step_started`` records of the steps the journal shows unfinished (each with the
                run's ``token``). An executor killed between starting a job and journaling it leaves a job
                with no record: the engine must find those as well.
            tokens: the markers of every earlier executor on this run directory (`Job.token`).

        Raises:
            RuntimeError: a job could not be stopped.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every running job and free the engine's resources; no `JobEnd` is reported for them.

        Called once per run, even when `prepare` failed; a second call does nothing.
        """


DEFAULT_ENGINE = "local"  # tkplan: ignore[constant]  the documented default
"""The engine ``tkplan run`` uses unless told otherwise: child processes on this machine."""

ENTRY_POINT_GROUP = "tkplan.engines"  # tkplan: ignore[constant]  the packaging contract
"""The entry-point group where other packages declare engines (``name = "module:Class"``)."""

_ENGINES: dict[str, type[Engine] | str] = {DEFAULT_ENGINE: "tkplan.runtime._local:LocalEngine"}


def register_engine(name: str, engine: type[Engine] | str) -> None:
    """Make an engine available to ``execute(..., engine=name)``.

    Args:
        name: what ``--engine`` and ``execute`` call it.
        engine: the `Engine` subclass, or its ``"module:Class"`` import string (loaded on first use).

    .. versionadded:: 0.1
    """
    _ENGINES[name] = engine


def get_engine(name: str) -> type[Engine]:
    """The engine class registered as ``name``, or declared under that name in the ``tkplan.engines`` group.

    Raises:
        KeyError: no such engine (the message lists the known ones).

    .. versionadded:: 0.1
    """
    engine = _ENGINES.get(name) or _declared().get(name)
    if engine is None:
        raise KeyError(f"no engine {name!r}; known: {', '.join(engine_names())}")
    if isinstance(engine, str):
        module, _, attr = engine.partition(":")
        engine = getattr(importlib.import_module(module), attr)
    if not (isinstance(engine, type) and issubclass(engine, Engine)):
        raise KeyError(f"engine {name!r} is {engine!r}, not a subclass of tkplan.runtime.Engine")
    _ENGINES[name] = engine
    return engine


def engine_names() -> list[str]:
    """The engine names: those registered here and those declared by installed packages."""
    return sorted({*_ENGINES, *_declared()})


def _declared() -> dict[str, str]:
    """Engines declared in the ``tkplan.engines`` entry-point group of the installed distributions."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
