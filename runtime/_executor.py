"""Run a plan exactly: refuse a drifted machine, lock the run directory, start steps as the schedule allows.

`execute` is the whole of ``tkplan run``. It knows the plan, the journal and the admission rule; *how* a step
runs is the engine's business (``tkplan.runtime._engine``), so another engine changes nothing here.

The loop: steps start in ``schedule.order``, skipping ahead to the first one admissible now (work-conserving):
its dependencies ended ``ok`` (one that did not makes it ``skipped``), `can_start` holds for it next to the
running steps (thread budget, slots, VRAM per GPU), and the engine can take it. Each end is written to
``steps/<id>/result.json`` and then to the journal; other steps go on whatever one step does.

Before anything else, the plan's data file is measured again (`check_data`): a changed file is refused unless
drift is allowed. A run directory that already holds a run of this plan (on the same data: another data
digest is refused) is taken as it is: a finished run is not run again, its summary is returned; an unfinished
one needs ``resume``. ``--resume`` reads the journal: steps that ended ``ok`` are not run again, every other
step is. Whatever a dead executor left running on the directory is killed first (the engine finds it,
journaled or not); then a step whose child finished meanwhile has its result taken (``adopted``), and any
other step runs again, the files of its earlier attempt moved to ``attempts/<id>/<n>/``.

A sweep (`execute_sweep`) runs its union plan the same way; each step's child gets its home point's
configuration and data, the run directory keeps the sweep's record (``sweep.json``), and a later sweep that
extends the one run there runs only what has not ended ok (``tkplan.runtime._sweeprun``).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from tkplan._io import write_text_atomic
from tkplan.errors import DiskFullError, DriftError, HistoryError, PlanError, RunDirError
from tkplan.planner._convert import converter, thaw
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._plan import Plan, Step, can_start, fits_alone
from tkplan.runtime._classify import classify
from tkplan.runtime._context import Trainers
from tkplan.runtime._datacheck import DataCheck, check_data
from tkplan.runtime._drift import hardware_differences
from tkplan.runtime._engine import DEFAULT_ENGINE, Engine, Job, JobEnd, get_engine
from tkplan.runtime._events import (
    DataReady,
    Event,
    Heartbeat,
    HistoryRecorded,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from tkplan.runtime._jobspec import job_spec, plan_facts
from tkplan.runtime._journal import replay
from tkplan.runtime._ours import new_token
from tkplan.runtime._results import Allowance, RunSummary, StepResult
from tkplan.runtime._rundir import RunDir
from tkplan.runtime._settings import ExecutorSettings
from tkplan.runtime._sweeprun import SweepRun, write_record

__all__ = ["execute", "execute_sweep"]


def execute(plan: Plan, run_dir: Path, *, resume: bool = False, allow_drift: bool = False,
            max_parallel: int | None = None, engine: str = DEFAULT_ENGINE,
            on_event: Callable[[Event], None] | None = None, settings: ExecutorSettings = ExecutorSettings(),
            hardware: HardwareSpec | None = None, engine_options: Mapping[str, Any] | None = None,
            project_root: Path | None = None, allow_data_drift: bool = False,
            digest_cache: Path | None = None, trainers: Trainers | None = None,
            sweep: SweepRun | None = None, history: Path | None = None) -> RunSummary:
    """Run ``plan`` in ``run_dir`` and return every step's result.

    Args:
        plan: a plan read with ``plan_from_json`` (its hash already verified).
        run_dir: the run directory (created if needed); see ``tkplan.runtime._rundir`` for its layout.
        resume: finish a run this directory already holds, running again every step that did not end ok.
        allow_drift: run even though this machine differs from ``plan.hardware``.
        max_parallel: run at most this many steps at once (never more than the plan's slots).
        engine: the registered engine to run steps on.
        on_event: called with each `Event`, in the executor's thread (progress display).
        settings: polling period, kill grace, drift tolerance.
        hardware: the spec of where the steps run (default: the engine's: ``probe()`` of this machine, or the
            Ray cluster's).
        engine_options: the engine's own options (``{"address": ...}`` for ``ray``).
        project_root: where a relative ``data.source`` of the plan is (default: the working directory).
        allow_data_drift: run even though the data file differs from the one the plan was compiled from.
        digest_cache: where data digests are remembered (``None``: the data file is read whole).
        trainers: what runs the steps whose family names no entrypoint, and prepares their data (``tkplan run``
            gives the built-in families'); ``None`` when every step names its own.
        sweep: run a sweep: ``plan`` is ``sweep.plan``, its union (`execute_sweep` says so shorter).
        history: the history store this run's observations go to (``tkplan.runtime._history``; ``None``: none).
            A store that cannot be written never fails the run: a `HistoryRecorded` event says why.

    Returns:
        The summary: one result per step, in the plan's order, including steps finished by earlier runs;
        for a run the directory holds finished already, its summary (nothing runs).

    Raises:
        DriftError: the machine differs from the plan's and ``allow_drift`` is false.
        DataDriftError: the data file is missing or changed and ``allow_data_drift`` is false.
        RunDirError: the run directory is locked, holds another plan's run or a run on other data, or holds
            an unfinished run and ``resume`` is false; a file in it is damaged or cannot be read or written.
        DiskFullError: a write failed for want of space; the journal still ends with a whole record, so
            ``resume`` finishes the run once there is room.
        PlanError: a step can never start (it does not fit the plan's budget alone) or depends on no step; the
            engine cannot run this plan (the local engine and a cluster's plan).
        EngineError: the engine cannot reach or start where steps run.
        KeyError: ``engine`` is not registered.
        ValueError: an engine option the engine does not know; a step names no entrypoint and no ``trainers``
            were given.

    .. versionadded:: 0.1
    """
    started = time.monotonic()
    _check_schedulable(plan)
    untrained = [s.id for s in plan.steps if s.entrypoint is None]
    if untrained and trainers is None:
        raise ValueError(f"steps {', '.join(untrained)} name no entrypoint and no trainers were given to run them")
    data = check_data(plan, project_root or Path.cwd(), digest_cache, allow_drift=allow_data_drift)
    checks = {plan.data.digest: data}
    for home in (sweep.homes.values() if sweep else ()):
        if home.data.digest not in checks:
            checks[home.data.digest] = check_data(home, project_root or Path.cwd(), digest_cache,
                                                  allow_drift=allow_data_drift)
    engine_class = get_engine(engine)
    path = Path(run_dir).absolute()  # an engine written before engine options takes (run_dir, settings)
    runner = engine_class(path, settings, engine_options) if engine_options else engine_class(path, settings)
    try:
        drift = hardware_differences(plan.hardware, runner.prepare(plan, hardware), settings)
        if drift and not allow_drift:
            raise DriftError(drift)
        extend: Literal["finished", "any"] | None = ("any" if resume else "finished") if sweep else None
        with RunDir.open(run_dir, plan, resume=True, extend=extend) as rundir:  # whether a run may go on: go()
            run = _Run(plan, rundir, runner, settings, max_parallel, on_event or (lambda event: None), started,
                       data, trainers, sweep, checks, history)
            return run.go(tuple(drift), resume)
    except OSError as exc:
        raise _refusal(exc, Path(run_dir)) from None
    finally:
        runner.close()


def execute_sweep(sweep: SweepRun, run_dir: Path, **options: Any) -> RunSummary:
    """Run a sweep's one schedule in ``run_dir``: every distinct step of its points once, under one budget.

    Takes `execute`'s options. A directory that holds an earlier sweep whose steps are all steps of this one
    is extended: what ended ok there is taken, the rest runs (an unfinished earlier run needs ``resume``).

    Raises:
        As `execute`; RunDirError also when the directory holds a plan's run, or a sweep's that this one
        does not extend.

    .. versionadded:: 0.1
    """
    return execute(sweep.plan, run_dir, sweep=sweep, **options)


def _refusal(exc: OSError, run_dir: Path) -> RunDirError | DiskFullError:
    """The user's words for a failed read or write in the run directory (or the data it prepares)."""
    where = exc.filename or run_dir
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{where}: no space left on the device; every finished step is kept: free some "
                             f"space and finish the run with --resume --out {run_dir}", path=str(where))
    return RunDirError(f"{where}: {exc.strerror or exc}; the run directory is damaged or unusable: "
                       "pass --out with another directory", path=str(where))


def _check_schedulable(plan: Plan) -> None:
    ids = {s.id for s in plan.steps}
    problems = []
    for step in plan.steps:
        if not fits_alone(step, plan.schedule, plan.hardware):
            problems.append(f"step {step.id} can never start: {step.resources.threads} thread(s) and "
                            f"VRAM cap {step.limits.vram_cap_mb} MB do not fit the schedule "
                            f"({plan.schedule.thread_budget} threads) and GPUs")
        problems += [f"step {step.id} depends on {d}, which is not in the plan"
                     for d in step.depends_on if d not in ids]
    missing = ids - set(plan.schedule.order)
    if missing:
        problems.append(f"steps missing from schedule.order: {', '.join(sorted(missing))}")
    if problems:
        raise PlanError("the plan cannot be run: " + "; ".join(problems) + "; compile it again")


class _Run:
    """One invocation of the executor on one run directory."""

    def __init__(self, plan: Plan, rundir: RunDir, engine: Engine, settings: ExecutorSettings,
                 max_parallel: int | None, emit: Callable[[Event], None], started: float, data: DataCheck,
                 trainers: Trainers | None = None, sweep: SweepRun | None = None,
                 checks: Mapping[str, DataCheck] | None = None, history: Path | None = None) -> None:
        self.plan = plan
        self.rundir = rundir
        self.engine = engine
        self.settings = settings
        self.max_parallel = max_parallel
        self.emit = emit
        self.started = started
        self.steps = {s.id: s for s in plan.steps}
        self.results: dict[str, StepResult] = {}
        self.running: dict[str, Step] = {}
        self.started_at: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.last_news = started
        self.data = data
        self.facts = {**plan_facts(plan), "config": data.config}
        self.trainers = trainers
        self.sweep = sweep
        self.checks = checks or {}
        self.home_facts: dict[str, dict[str, Any]] = {}
        self.token = new_token()
        self.history = history
        self.ended: list[str] = []  # the steps that ended in this invocation, for the history store
        self.size: tuple[int | None, int | None] = (None, None)

    # -- the run ---------------------------------------------------------------------------------------

    def go(self, drift: tuple[str, ...], resume: bool) -> RunSummary:
        state = replay(self.rundir.records)
        self._check_earlier_run(state)
        for step_id, record in state.finished.items():
            self.results[step_id] = self._load_result(step_id, record)
        if self.rundir.records and not resume and not self.rundir.extended:
            if len(self.results) == len(self.steps) and not state.unfinished:
                return self._finished_already(drift)
            raise RunDirError(f"{self.rundir.path} holds an unfinished run of this plan "
                              f"({len(self.results)} of {len(self.steps)} steps ended); pass --resume to finish it, "
                              "or --fresh to start again in a new run directory")
        self.results = {k: r for k, r in self.results.items() if r.ok}  # --resume runs the others again
        self.attempts = dict(state.attempts)
        journal = self.rundir.journal
        journal.append("run_started", plan_hash=self.plan.plan_hash, pid=os.getpid(), resume=bool(self.rundir.records),
                       drift=list(drift), engine=type(self.engine).__name__, token=self.token,
                       data_sha256=self.data.sha256, data_drift=self.data.drift,
                       **({"extends": self.rundir.extended} if self.rundir.extended else {}))
        if self.sweep is not None:
            done = {k for k, r in self.results.items() if r.ok}
            journal.append("sweep_started", **write_record(self.rundir.path, self.sweep, done))
        adopted = []
        try:
            if self.rundir.records:
                try:
                    self.engine.release_orphans(list(state.unfinished.values()), tokens=state.tokens)
                except RuntimeError as exc:
                    raise RunDirError(f"cannot resume: {exc}") from None
                for step_id in self.plan.schedule.order:
                    if (step_id not in state.finished and step_id not in self.results
                            and self._adopt(step_id, state.unfinished.get(step_id, {}))):
                        adopted.append(step_id)
            self.emit(RunStarted(str(self.rundir.path), self.plan.plan_hash, len(self.steps), len(self.results),
                                 tuple(adopted), drift, data_drift=self.data.drift))
            self._prepare_data()
            self._loop()
        except BaseException:
            running = sorted(self.running)
            self.engine.close()
            with contextlib.suppress(OSError):  # a full disk: the journal already ends with a whole record
                journal.append("run_interrupted", running=running)
            self._remember(round(time.monotonic() - self.started, 3))
            raise
        self.engine.close()
        results = tuple(self.results[s] for s in self.plan.schedule.order)
        summary = RunSummary.of(self.plan.plan_hash, str(self.rundir.path), results,
                                round(time.monotonic() - self.started, 3))
        self._remember(summary.wall_s)
        write_text_atomic(self.rundir.path / "summary.json", _dumps(converter.unstructure(summary)))
        journal.append("run_finished", counts=dict(summary.counts))
        self.emit(RunFinished(summary))
        return summary

    def _check_earlier_run(self, state: Any) -> None:
        """Refuse a run directory whose run used other data than this run's (a finished run would be reused)."""
        used = [r["data_sha256"] for r in self.rundir.records if r["event"] == "run_started" and "data_sha256" in r]
        if used and used[-1] != self.data.sha256:
            raise RunDirError(f"{self.rundir.path} holds a run of this plan on other data (sha256 {used[-1]}; the data "
                              f"now: {self.data.sha256}); pass --fresh to run in a new run directory")

    def _finished_already(self, drift: tuple[str, ...]) -> RunSummary:
        """The summary of the run the directory holds, which every step has ended: nothing runs again."""
        self.engine.close()
        results = tuple(self.results[s] for s in self.plan.schedule.order)
        self.emit(RunStarted(str(self.rundir.path), self.plan.plan_hash, len(self.steps), len(self.results), (), drift,
                             finished=True))
        summary = RunSummary.of(self.plan.plan_hash, str(self.rundir.path), results,
                                round(time.monotonic() - self.started, 3))
        self.emit(RunFinished(summary))
        return summary

    def _prepare_data(self) -> None:
        """Prepare the default trainer's data once, before any step: bad data stops the run here, whole.

        A sweep's steps train on their homes' data: each distinct one is prepared."""
        if self.trainers is None or self.trainers.prepare is None:
            return
        builtin = [s for s in self.plan.schedule.order if s not in self.results and self.steps[s].entrypoint is None]
        configs: dict[str, Any] = {}
        for step_id in builtin:
            config = self._facts(self.steps[step_id])["config"]
            key = json.dumps([config["data"], config["run"]["base_seed"], config["campaign"]["targets"]],
                             sort_keys=True, default=str)
            configs.setdefault(key, config)
        for config in configs.values():
            module, _, name = self.trainers.prepare.partition(":")
            prepare = getattr(importlib.import_module(module), name)
            try:
                prepared = prepare(config, self.rundir.path)
            except (KeyError, TypeError, AttributeError) as exc:  # a config the built-in trainer cannot read
                raise PlanError(f"the plan's data settings cannot be used ({type(exc).__name__}: {exc}); "
                                "compile the plan again") from None
            meta = getattr(prepared, "meta", None) or {}
            self.size = (meta.get("rows"), len(meta["feature_names"]) if "feature_names" in meta else None)
            if "feature_names" in meta:
                self.emit(DataReady(str(meta.get("source", "")), tuple(meta["feature_names"]),
                                    tuple((d["column"], d["reason"]) for d in meta.get("dropped_columns", ())),
                                    str(getattr(prepared, "directory", ""))))

    def _loop(self) -> None:
        pending = [s for s in self.plan.schedule.order if s not in self.results]
        while pending or self.running:
            self._start_ready(pending)
            if not self.running:
                if pending:  # cannot happen for a checked plan; never spin
                    raise RuntimeError(f"no step can start and none is running; waiting: {', '.join(pending)}")
                break
            for end in self.engine.poll(self.settings.poll_interval_s):
                self._end(end)
            if self.running and time.monotonic() - self.last_news >= self.settings.heartbeat_s:
                self.last_news = time.monotonic()
                self.emit(Heartbeat(tuple(self.running), len(self.results), len(self.steps), self._elapsed()))

    def _start_ready(self, pending: list[str]) -> None:
        progress = True
        while progress:
            progress = False
            for step_id in list(pending):
                step = self.steps[step_id]
                failed = next((d for d in step.depends_on if d in self.results and not self.results[d].ok), None)
                left = self._deadline_left()
                if failed is not None:
                    self._skip(step, f"dependency {failed} ended {self.results[failed].status}")
                elif any(d not in self.results for d in step.depends_on):
                    continue
                elif left is not None and left <= 0:
                    self._skip(step, f"the run's deadline ({self.plan.schedule.deadline_s} s) had passed")
                elif (can_start(step, list(self.running.values()), self.plan.schedule, self.plan.hardware,
                                self.max_parallel) and self.engine.accepts(step)):
                    self._start(step, left)
                else:
                    continue
                pending.remove(step_id)
                progress = True

    def _deadline_left(self) -> float | None:
        deadline = self.plan.schedule.deadline_s
        return None if deadline is None else deadline - (time.monotonic() - self.started)

    # -- one step --------------------------------------------------------------------------------------

    def _facts(self, step: Step) -> Mapping[str, Any]:
        """What every step of ``step``'s plan reads alike: the plan's, or for a sweep its home point plan's."""
        if self.sweep is None:
            return self.facts
        home = self.sweep.homes[step.id]
        if home.plan_hash not in self.home_facts:
            config = thaw(home.config)
            config["data"]["source"] = self.checks[home.data.digest].config["data"]["source"]
            self.home_facts[home.plan_hash] = {**plan_facts(home), "config": config}
        return self.home_facts[home.plan_hash]

    def _start(self, step: Step, deadline_left: float | None) -> None:
        attempt = self.attempts.get(step.id, 0) + 1
        self.attempts[step.id] = attempt
        step_dir = self.rundir.fresh_step_dir(step.id)
        spec = job_spec(self.plan, step, self.rundir.path, step_dir, self._facts(step),
                        self.trainers.run_step if self.trainers else None)
        timeout = float(step.limits.timeout_s if deadline_left is None else min(step.limits.timeout_s, deadline_left))
        spec["watch"] = {"timeout_s": timeout, "memory_cap_mb": step.limits.memory_cap_mb,
                         "poll_s": self.settings.poll_interval_s}
        write_text_atomic(step_dir / "step.json", json.dumps(spec, sort_keys=True, separators=(",", ":")))
        self.started_at[step.id] = round(time.time(), 3)
        try:
            facts = self.engine.start(Job(step, self.rundir.path, step_dir, timeout, attempt, self.token))
        except OSError as exc:
            self._record(StepResult(step.id, "crashed", f"could not start: {exc}", Allowance.of(step), attempt,
                                    self.started_at[step.id]))
            return
        self.running[step.id] = step
        self.rundir.journal.append("step_started", step=step.id, attempt=attempt, token=self.token, **facts)
        self.last_news = time.monotonic()
        self.emit(StepStarted(step.id, tuple(self.running), len(self.results), len(self.steps), self._elapsed()))

    def _end(self, end: JobEnd) -> None:
        step = self.running.pop(end.step_id)
        if end.status == "cancelled":
            return
        outcome: Mapping[str, Any] = end.outcome or {}
        usage = outcome.get("usage") or {}
        error = outcome.get("error") or {}
        self._record(StepResult(
            step_id=step.id, status=end.status, detail=end.detail, allowed=Allowance.of(step),
            attempt=self.attempts[step.id], started_at=self.started_at.get(step.id), wall_s=end.wall_s,
            cpu_s=end.cpu_s, peak_rss_mb=end.peak_rss_mb, threads_seen=end.threads_seen,
            gpu_peak_mb=usage.get("gpu_peak_mb"), pools=tuple(usage.get("pools") or ()),
            applied=outcome.get("applied") or {},
            metrics=outcome.get("metrics") or {}, output=outcome.get("output") or {},
            error=error.get("traceback")))

    def _skip(self, step: Step, why: str) -> None:
        self.rundir.step_dir(step.id).mkdir(parents=True, exist_ok=True)
        self._record(StepResult(step.id, "skipped", why, Allowance.of(step), attempt=0))

    def _record(self, result: StepResult, *, announce: bool = True) -> None:
        """Write the result (and the metrics alone, for scripts), then journal it: a journaled end always has
        its result.json."""
        step_dir = self.rundir.step_dir(result.step_id)
        write_text_atomic(step_dir / "result.json", _dumps(converter.unstructure(result)))
        if result.metrics:
            write_text_atomic(step_dir / "metrics.json", _dumps(thaw(result.metrics)))
        self.rundir.journal.append("step_finished", step=result.step_id, status=result.status, detail=result.detail,
                                   wall_s=result.wall_s, adopted=result.adopted)
        self.results[result.step_id] = result
        self.ended.append(result.step_id)
        self.last_news = time.monotonic()
        if announce:
            self.emit(StepFinished(result, tuple(self.running), len(self.results), len(self.steps),
                                   self._elapsed()))

    # -- what earlier runs left ------------------------------------------------------------------------

    def _load_result(self, step_id: str, record: Mapping[str, Any]) -> StepResult:
        path = self.rundir.step_dir(step_id) / "result.json"
        try:
            return converter.structure(json.loads(path.read_text("utf-8")), StepResult)
        except Exception:  # unreadable or malformed: the journal's record is the fallback
            return StepResult(step_id, str(record.get("status", "crashed")), str(record.get("detail", "")),
                              Allowance.of(self.steps[step_id]), wall_s=record.get("wall_s"))

    def _adopt(self, step_id: str, started: Mapping[str, Any]) -> bool:
        """Take the result of a step that finished after its executor died (its child's ``outcome.json``).

        Only the latest attempt's files are in ``steps/<id>/`` (a new attempt moves older ones aside), so an
        outcome there is that attempt's, journaled as started or not.
        """
        step = self.steps[step_id]
        try:
            outcome = json.loads((self.rundir.step_dir(step_id) / "outcome.json").read_text("utf-8"))
        except (OSError, ValueError):
            return False
        status, detail = classify(killed_for=None, returncode=None, outcome=outcome)
        usage = outcome.get("usage") or {}
        self._record(StepResult(
            step_id=step_id, status=status, detail=detail, allowed=Allowance.of(step),
            attempt=max(1, self.attempts.get(step_id, 0)), started_at=started.get("time"), wall_s=usage.get("wall_s"),
            cpu_s=usage.get("cpu_s"), peak_rss_mb=usage.get("max_rss_mb"), threads_seen=usage.get("threads"),
            gpu_peak_mb=usage.get("gpu_peak_mb"), pools=tuple(usage.get("pools") or ()),
            applied=outcome.get("applied") or {},
            metrics=outcome.get("metrics") or {}, output=outcome.get("output") or {},
            error=(outcome.get("error") or {}).get("traceback"), adopted=True), announce=False)
        return True

    def _remember(self, wall_s: float) -> None:
        """Add the steps that ended in this invocation to the history store; a store that fails is reported."""
        if self.history is None or not self.ended:
            return
        from tkplan.runtime._history import record_run

        run = f"{self.plan.plan_hash[:8]}-{self.token[:6]}"
        try:
            recorded = record_run(self.history, self.plan, [self.results[s] for s in self.ended], run,
                                  self.rundir.path, wall_s, self.size)
        except HistoryError as exc:
            self.emit(HistoryRecorded(str(self.history), run, 0, str(exc)))
            return
        self.emit(HistoryRecorded(str(self.history), run, recorded))

    def _elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
