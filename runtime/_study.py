"""A study: Optuna asks for trials, each trial a compiled plan whose steps run on the local engine, pruned live.

`run_study` is the whole of ``tkplan tune``. It asks Optuna (ask/tell) for a trial whenever fewer trials run
than the study runs at once and the budget of trials (and time) has room, compiles it with the caller's
``compile_trial`` (the planner, in process: each trial its own plan and hash), and starts its steps on local
engines, one per trial slot (each with its own warm worker for ``inproc`` steps), as the threads and GPU
memory of the steps running now allow. A trial that ends or is pruned
frees its threads for the next trial at once: trials are asked one by one, never in batches.

While a step trains, the lines it appends to its ``epochs.jsonl`` (a network's validation loss per epoch; a
boosted-tree family's every ``log_every`` rounds) are reported to the trial as its intermediate values (the
loss, negated when the study maximizes, so that the pruner compares like with like; epoch or round ``k`` is
reported once, by the first step of the trial that reaches it). When the pruner says so, the trial's steps
are stopped: a boosted-tree step is asked to (``steps/<id>/stop``: it stops at its next logged round and its
warm worker lives on) and killed if it has not within ``term_grace_s``, a network step is killed at once;
each is recorded ``pruned``, its curve so far kept in its result, and the trial is told ``PRUNED``. A trial
whose steps all end ``ok`` is told the mean over its steps of the metric on the validation split; any other
end is ``FAIL``.

Layout of a study directory::

    <study_dir>/
      .lock            held while the study runs
      journal.jsonl    what happened, append-only: study_started, trial_started, step_started, step_finished,
                       trial_finished, trial_requeued, study_finished / study_interrupted (history_failed:
                       a trial's steps could not be added to the history store)
      optuna.journal   Optuna's journal file storage (unless ``tune.storage`` names another)
      study.json       the study as reports read it (rewritten as each trial ends)
      data/            the prepared data, shared by every trial
      trials/<nnnn>/   trial n's run directory, as ``tkplan run`` writes one: plan.json, journal.jsonl,
                       summary.json, steps/<id>/ (model, predictions, result.json, epochs.jsonl); data -> ../../data

``resume``: the steps a killed study left running are killed (only what carries its marker), every trial
Optuna still holds as running is told ``FAIL`` and asked again with the same values (``trial_requeued``:
counted once, as the trial that asks it again; one killed while its values were being sampled keeps those it
had and samples the rest); finished trials are kept and count toward ``trials``.

Each finished trial's steps go to the history store (``history``) as a run's do, so the next study, sweep or
compile on this machine plans with what they took.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tkplan._io import write_text_atomic
from tkplan.errors import ExtraMissingError, HistoryError, PlanError, RunDirError, TkplanError
from tkplan.planner._convert import JsonMap, converter, freeze, thaw
from tkplan.planner._plan import Plan, Step
from tkplan.runtime._context import EPOCH_LOG, STOP_FILE, Trainers
from tkplan.runtime._datacheck import check_data
from tkplan.runtime._engine import Engine, Job, JobEnd, get_engine
from tkplan.runtime._jobspec import job_spec, plan_facts
from tkplan.runtime._journal import Journal, read_journal
from tkplan.runtime._ours import new_token
from tkplan.runtime._results import Allowance, RunSummary, StepResult
from tkplan.runtime._rundir import RunDir
from tkplan.runtime._settings import ExecutorSettings

__all__ = ["StudySpec", "StudySummary", "TrialEvent", "TrialRecord", "run_study", "study_importances", "study_state"]

STORAGE_FILE = "optuna.journal"  # tkplan: ignore[constant]  the study directory's layout
STUDY_FILE = "study.json"  # tkplan: ignore[constant]  the study directory's layout
SPLIT = "val"  # tkplan: ignore[constant]  a study optimises on the validation split; the test split stays held out
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")  # tkplan: ignore[constant]  Optuna's TrialState names


@attrs.frozen
class StudySpec:
    """What a study is: its objective, sampler, pruner, budget, storage and search space.

    Attributes:
        name: the study's name in the storage.
        metric: the step metric (validation split) a trial's value is.
        direction: ``minimize`` or ``maximize``.
        trials: trials to finish (complete, pruned or failed); a requeued trial counts once.
        timeout_s: no trial starts after this many seconds of this invocation; ``None``: no limit.
        parallel: trials at once.
        sampler: ``tpe`` or ``random``; sampler_seed: its seed; sampler_startup_trials: TPE's random trials.
        pruner: ``median`` or ``none``; pruner_startup_trials, warmup_steps: the median pruner's settings.
        storage: an Optuna storage URL, or ``None`` for the journal file in the study directory.
        enqueue: trials to run first (searched key → value), when the study is new.
        space: the searched keys, in order: ``{"key", "kind" (int | float | choice), "low", "high", "log", "step",
            "choices"}``.
    """

    name: str
    metric: str
    direction: str
    trials: int
    timeout_s: float | None
    parallel: int
    sampler: str
    sampler_seed: int
    sampler_startup_trials: int
    pruner: str
    pruner_startup_trials: int
    warmup_steps: int
    storage: str | None
    space: tuple[JsonMap, ...] = attrs.field(converter=lambda v: tuple(freeze(d) for d in v))
    enqueue: tuple[JsonMap, ...] = attrs.field(default=(), converter=lambda v: tuple(freeze(d) for d in v))


@attrs.frozen
class TrialRecord:
    """One trial as the study file holds it.

    Attributes:
        number: Optuna's trial number.
        state: ``COMPLETE``, ``PRUNED``, ``FAIL`` or ``RUNNING``.
        value: the trial's value (``None`` unless complete; a pruned trial's last reported loss is in ``detail``).
        params: the sampled value of each searched key.
        duration_s: wall time of its steps, start to end.
        detail: why it failed or where it was pruned.
        plan_hash: its plan's hash; directory: its run directory, relative to the study directory.
        steps: step id → status.
        retry_of: the number of the interrupted trial it asks again, or ``None``.
    """

    number: int
    state: str
    value: float | None
    params: JsonMap = attrs.field(converter=freeze)
    duration_s: float | None = None
    detail: str = ""
    plan_hash: str = ""
    directory: str = ""
    steps: JsonMap = attrs.field(factory=dict, converter=freeze)
    retry_of: int | None = None


@attrs.frozen
class StudySummary:
    """A study after this invocation: every trial, the best, what this invocation did.

    Attributes:
        study_dir: the study directory.
        name, metric, direction: the study's.
        trials: every trial in the storage, by number.
        best: the best complete trial, or ``None``.
        wall_s: this invocation's wall time.

    The parameters' importances are not computed here (their evaluator costs seconds that no trial needs):
    `study_importances` gives them, and ``tkplan report`` shows them.
    """

    study_dir: str
    name: str
    metric: str
    direction: str
    trials: tuple[TrialRecord, ...]
    best: TrialRecord | None
    wall_s: float

    def counts(self) -> dict[str, int]:
        """How many trials are in each state."""
        return {state: sum(t.state == state for t in self.trials) for state in (*_FINISHED, "RUNNING")}


@attrs.frozen
class TrialEvent:
    """What the driver tells its caller: a trial ``started`` or ``finished`` (with its record), or ``requeued``.

    Attributes:
        kind: ``started``, ``finished`` or ``requeued``.
        trial: the trial (for ``started``, its state is ``RUNNING``).
        running: the numbers of the trials running now.
        finished: trials finished toward the budget; total: the budget.
        elapsed_s: since the study started.
    """

    kind: str
    trial: TrialRecord
    running: tuple[int, ...]
    finished: int
    total: int
    elapsed_s: float


TrialCompiler = Callable[[Mapping[str, Any], int], Plan]
"""``compile_trial(values, number)``: the plan of trial ``number`` with ``values`` for the searched keys."""


def run_study(spec: StudySpec, compile_trial: TrialCompiler, study_dir: Path, *, thread_budget: int,
              resume: bool = False, settings: ExecutorSettings = ExecutorSettings(),
              on_event: Callable[[TrialEvent], None] | None = None, project_root: Path | None = None,
              digest_cache: Path | None = None, trainers: Trainers | None = None,
              history: Path | None = None) -> StudySummary:
    """Run the study ``spec`` in ``study_dir`` until ``spec.trials`` trials have finished (or the timeout).

    Args:
        spec: the study.
        compile_trial: the planner's compile of one trial.
        study_dir: the study directory (created if needed; see the module docstring).
        thread_budget: the threads the steps running at once may use together (the machine's budget).
        resume: continue the study the directory holds.
        settings: polling period, kill grace.
        on_event: called with each `TrialEvent`, in the driver's thread.
        project_root: where a relative ``data.source`` of the plans is (default: the working directory).
        digest_cache: where data digests are remembered.
        trainers: what runs the steps whose family names no entrypoint, and prepares their data (``tkplan tune``
            gives the built-in families'); ``None`` when every step names its own.
        history: the history store each finished trial's steps go to, as a run's do (``None``: none).

    Raises:
        ExtraMissingError: Optuna is not installed.
        RunDirError: the directory is locked, holds a study and ``resume`` is false, or is not a study's.
        PlanError, DataError: the data cannot be prepared.

    .. versionadded:: 0.1
    """
    optuna = _optuna()
    study_dir = Path(study_dir).absolute()
    lock = _lock(study_dir, resume)
    try:
        with Journal.open(study_dir / "journal.jsonl") as journal:
            driver = _Driver(optuna, spec, compile_trial, study_dir, journal, thread_budget, settings,
                             on_event or (lambda event: None), project_root or Path.cwd(), digest_cache, resume,
                             trainers, history)
            return driver.go()
    finally:
        os.close(lock)


def study_state(study_dir: Path) -> Mapping[str, Any]:
    """The content of ``study_dir/study.json`` (what the report reads).

    Raises:
        RunDirError: there is none, or it is damaged.
    """
    path = Path(study_dir) / STUDY_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise RunDirError(f"{path}: {exc.strerror or exc}; give the directory `tkplan tune` wrote") from None
    except ValueError:
        raise RunDirError(f"{path}: damaged (not JSON); the study directory was edited") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: not a study file")
    return data


def study_importances(study_dir: Path, study: Mapping[str, Any]) -> dict[str, float]:
    """Each searched key's importance in the study (``study``: its ``study.json``), from its storage: Optuna's
    fANOVA evaluator, seeded as the study's sampler. Empty when it cannot be computed (too few complete trials,
    every trial of one value, a storage that cannot be read, Optuna not installed)."""
    try:
        optuna = _optuna()
        storage = _storage(optuna, Path(study_dir), study.get("storage"))
        loaded = optuna.load_study(study_name=str(study["name"]), storage=storage)
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=study.get("seed"))
        weights = optuna.importance.get_param_importances(loaded, evaluator=evaluator)
    except Exception:  # nothing to show is the answer to every failure here
        return {}
    return {str(k): round(float(v), 6) for k, v in weights.items()}


def _storage(optuna: Any, study_dir: Path, url: str | None) -> Any:
    """The study's storage: ``url`` (``tune.storage``), else the journal file in the study directory."""
    if url is not None:
        return url
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(study_dir / STORAGE_FILE)))


def _optuna() -> Any:
    try:
        optuna = importlib.import_module("optuna")
    except ImportError:
        raise ExtraMissingError("tkplan tune", "tune", "Optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the driver reports each trial itself
    return optuna


def _lock(study_dir: Path, resume: bool) -> int:
    """Create and lock the study directory; refuse a foreign directory, or a study without ``resume``."""
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create the study directory {study_dir}: {exc.strerror}") from None
    fd = os.open(study_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirError(f"{study_dir} is locked by another tkplan tune; wait for it, or pass --out with another "
                          "directory") from None
    entries = {p.name for p in study_dir.iterdir()} - {".lock"}
    if entries and "journal.jsonl" not in entries:
        os.close(fd)
        raise RunDirError(f"{study_dir} is not empty and holds no study (no journal.jsonl); pass --out with a new "
                          "or empty directory")
    if entries and not resume:
        os.close(fd)
        raise RunDirError(f"{study_dir} already holds a study; pass --resume to continue it, or --out with another "
                          "directory")
    return fd


@attrs.define
class _Trial:
    """A trial this invocation runs."""

    number: int
    handle: Any  # optuna.Trial
    params: dict[str, Any]
    plan: Plan
    rundir: RunDir
    facts: dict[str, Any]
    pending: list[str]
    retry_of: int | None
    started: float = attrs.field(factory=time.monotonic)
    running: dict[str, Step] = attrs.field(factory=dict)
    results: dict[str, StepResult] = attrs.field(factory=dict)
    started_at: dict[str, float] = attrs.field(factory=dict)
    offsets: dict[str, int] = attrs.field(factory=dict)
    curves: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    reported: set[int] = attrs.field(factory=set)
    pruned_at: str = ""

    @property
    def steps(self) -> dict[str, Step]:
        return {s.id: s for s in self.plan.steps}


class _Driver:
    """One invocation of the study driver on one study directory."""

    def __init__(self, optuna: Any, spec: StudySpec, compile_trial: TrialCompiler, study_dir: Path,
                 journal: Journal, thread_budget: int, settings: ExecutorSettings,
                 emit: Callable[[TrialEvent], None], project_root: Path, digest_cache: Path | None,
                 resume: bool, trainers: Trainers | None = None, history: Path | None = None) -> None:
        self.optuna = optuna
        self.spec = spec
        self.compile_trial = compile_trial
        self.dir = study_dir
        self.journal = journal
        self.budget = thread_budget
        self.settings = settings
        self.emit = emit
        self.root = project_root
        self.digest_cache = digest_cache
        self.resume = resume
        self.trainers = trainers
        self.history = history
        self.size: tuple[int | None, int | None] = (None, None)  # the prepared data's rows and features
        self.started = time.monotonic()
        self.token = new_token()
        self.active: dict[int, _Trial] = {}
        self.jobs: dict[str, tuple[_Trial, Step]] = {}
        self.records: dict[int, TrialRecord] = {}
        self.requeued: dict[int, int] = {}  # the requeued trial's number → the number it was asked again as
        self.prepared = False
        # one local engine per trial slot: each has its own warm worker for the trials' inproc steps
        self.engines: list[Engine] = [get_engine("local")(study_dir, settings) for _ in range(max(1, spec.parallel))]
        self.job_engine: dict[str, Engine] = {}
        self.stopping: dict[str, float] = {}  # job → when it is killed unless it stopped training by itself
        self.study: Any = None

    # -- the study -------------------------------------------------------------------------------------

    def go(self) -> StudySummary:
        earlier = read_journal(self.dir / "journal.jsonl") if self.resume else []
        self._load_records(earlier)
        self.study = self._open_study()
        self.journal.append("study_started", name=self.spec.name, pid=os.getpid(), token=self.token,
                            resume=bool(earlier), trials=self.spec.trials, parallel=self.spec.parallel)
        if not self.study.trials:
            for values in self.spec.enqueue:
                self.study.enqueue_trial(_plain(values))
        try:
            if earlier:
                self._release(earlier)
            self._loop()
        except BaseException:
            self._close()
            for trial in list(self.active.values()):
                with contextlib.suppress(OSError):
                    trial.rundir.journal.append("run_interrupted", running=sorted(trial.running))
                trial.rundir.close()
            with contextlib.suppress(OSError):
                self.journal.append("study_interrupted", running=sorted(self.active))
            raise
        self._close()
        summary = self._write_study()
        self.journal.append("study_finished", counts=summary.counts(),
                            best=None if summary.best is None else summary.best.number)
        return summary

    def _open_study(self) -> Any:
        optuna, spec = self.optuna, self.spec
        if spec.sampler == "random":
            sampler = optuna.samplers.RandomSampler(seed=spec.sampler_seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed, n_startup_trials=spec.sampler_startup_trials,
                                                 constant_liar=spec.parallel > 1)
        pruner = (optuna.pruners.NopPruner() if spec.pruner == "none" else
                  optuna.pruners.MedianPruner(n_startup_trials=spec.pruner_startup_trials,
                                              n_warmup_steps=spec.warmup_steps))
        storage = _storage(optuna, self.dir, spec.storage)
        try:
            return optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
                                       direction=spec.direction, load_if_exists=self.resume)
        except optuna.exceptions.DuplicatedStudyError:
            raise RunDirError(f"the storage {spec.storage} already holds a study named {spec.name!r}; pass --resume "
                              "to continue it, or set tune.name") from None
        except (ValueError, ImportError, RuntimeError) as exc:  # a URL the storage cannot open
            raise RunDirError(f"cannot open the study's storage {spec.storage}: {exc}") from None

    def _release(self, earlier: Sequence[Mapping[str, Any]]) -> None:
        """Kill what the dead driver left running, and ask again every trial it left unfinished."""
        tokens = [str(r["token"]) for r in earlier if r["event"] == "study_started" and r.get("token")]
        started: dict[str, Mapping[str, Any]] = {}
        for entry in earlier:
            key = f"{entry.get('trial')}/{entry.get('step')}"
            if entry["event"] == "step_started":
                started[key] = entry
            elif entry["event"] == "step_finished":
                started.pop(key, None)
        try:
            self.engines[0].release_orphans(list(started.values()), tokens=tokens)
        except RuntimeError as exc:
            raise RunDirError(f"cannot resume the study: {exc}") from None
        state = self.optuna.trial.TrialState
        for frozen in self.study.get_trials(deepcopy=False, states=(state.RUNNING,)):
            self.study.tell(frozen.number, state=state.FAIL)
            self.study.enqueue_trial(dict(frozen.params), user_attrs={"retry_of": frozen.number})
            self.journal.append("trial_requeued", trial=frozen.number, params=_plain(frozen.params))
            self.requeued[frozen.number] = -1
            record = self.records.get(frozen.number) or TrialRecord(frozen.number, "FAIL", None, frozen.params)
            self.records[frozen.number] = attrs.evolve(record, state="FAIL",
                                                       detail="interrupted by a kill: asked again")
            self.emit(self._event("requeued", self.records[frozen.number]))

    def _load_records(self, earlier: Sequence[Mapping[str, Any]]) -> None:
        """The trials an earlier invocation recorded (study.json), and which were requeued (the journal)."""
        if not earlier or not (self.dir / STUDY_FILE).is_file():
            return
        for trial in study_state(self.dir).get("trials", ()):
            with contextlib.suppress(Exception):  # an unreadable entry is rebuilt from the storage
                kept = converter.structure(trial, TrialRecord)
                self.records[kept.number] = kept
        for entry in earlier:
            if entry["event"] == "trial_requeued":
                self.requeued[int(entry["trial"])] = -1

    def _loop(self) -> None:
        while True:
            while self._room():
                self._ask()
            self._start_ready()
            if not self.jobs:
                if self._room():
                    continue
                if not self.active:
                    break
                raise RuntimeError(f"no step of trials {sorted(self.active)} can start and none is running")
            for engine in self.engines:
                for end in engine.poll(self.settings.poll_interval_s / len(self.engines)):
                    self._end(end)
            self._read_curves()
            self._kill_unstopped()

    def _counted(self) -> int:
        """Trials finished toward the budget: every finished trial but those asked again."""
        state = self.optuna.trial.TrialState
        finished = self.study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED, state.FAIL))
        return sum(t.number not in self.requeued for t in finished)

    def _room(self) -> bool:
        """Whether another trial may be asked now: fewer running than at once, budget and time left."""
        if len(self.active) >= self.spec.parallel or any(t.pending for t in self.active.values()):
            return False
        if self.spec.timeout_s is not None and time.monotonic() - self.started >= self.spec.timeout_s:
            return False
        return self._counted() + len(self.active) < self.spec.trials

    # -- one trial -------------------------------------------------------------------------------------

    def _ask(self) -> None:
        handle = self.study.ask()
        params = {str(d["key"]): _suggest(handle, d) for d in self.spec.space}
        retry_of = handle.user_attrs.get("retry_of")
        if retry_of is not None:
            self.requeued[int(retry_of)] = handle.number
            if int(retry_of) in self.records:
                self.records[int(retry_of)] = attrs.evolve(
                    self.records[int(retry_of)], detail=f"interrupted by a kill: asked again as trial {handle.number}")
        number = handle.number
        try:
            plan = self.compile_trial(params, number)
        except TkplanError as exc:  # a trial the planner cannot honour (a batch that does not fit, ...)
            self.journal.append("trial_started", trial=number, params=_plain(params), plan_hash=None)
            self._tell(number, handle, "FAIL", None, params, f"not planned: {exc}", None, "", {}, retry_of)
            return
        directory = self.dir / "trials" / f"{number:04d}"
        rundir = RunDir.open(directory, plan, resume=False)
        self._share_data(plan, directory)
        data = check_data(plan, self.root, self.digest_cache)
        facts = {**plan_facts(plan), "config": data.config}
        trial = _Trial(number, handle, params, plan, rundir, facts, list(plan.schedule.order), retry_of)
        handle.set_user_attr("plan_hash", plan.plan_hash)
        handle.set_user_attr("directory", str(directory.relative_to(self.dir)))
        rundir.journal.append("run_started", plan_hash=plan.plan_hash, pid=os.getpid(), resume=False, drift=[],
                              engine=type(self.engines[0]).__name__, token=self.token, data_sha256=data.sha256,
                              data_drift="")
        self.journal.append("trial_started", trial=number, params=_plain(params), plan_hash=plan.plan_hash,
                            retry_of=retry_of)
        self.active[number] = trial
        self.records[number] = TrialRecord(number, "RUNNING", None, params, plan_hash=plan.plan_hash,
                                           directory=str(directory.relative_to(self.dir)), retry_of=retry_of)
        self.emit(self._event("started", self.records[number]))
        if not self.prepared:
            self._prepare(plan, data.config)

    def _share_data(self, plan: Plan, directory: Path) -> None:
        """The trial's data directory is the study's: data prepared once serves every trial."""
        (self.dir / "data").mkdir(exist_ok=True)
        os.symlink(os.path.join("..", "..", "data"), directory / "data")

    def _prepare(self, plan: Plan, config: Mapping[str, Any]) -> None:
        """Prepare the built-in trainer's data once, before the first step: bad data stops the study, whole."""
        self.prepared = True
        if all(s.entrypoint is not None for s in plan.steps):
            return
        if self.trainers is None or self.trainers.prepare is None:
            raise ValueError("steps name no entrypoint and no trainers were given to run them")
        module, _, name = self.trainers.prepare.partition(":")
        prepare = getattr(importlib.import_module(module), name)
        try:
            prepared = prepare(config, self.dir)
        except (KeyError, TypeError, AttributeError) as exc:  # a config the built-in trainer cannot read
            raise PlanError(f"the plan's data settings cannot be used ({type(exc).__name__}: {exc}); "
                            "compile the plan again") from None
        meta = getattr(prepared, "meta", None) or {}
        self.size = (meta.get("rows"), len(meta["feature_names"]) if "feature_names" in meta else None)

    def _start_ready(self) -> None:
        """Start every pending step that fits next to the running ones, trials in the order they were asked."""
        for trial in list(self.active.values()):
            steps = trial.steps
            for step_id in list(trial.pending):
                step = steps[step_id]
                deps = [trial.results.get(d) for d in step.depends_on]
                if any(r is not None and not r.ok for r in deps):
                    trial.pending.remove(step_id)
                    self._record(trial, StepResult(step_id, "skipped", "a step it depends on did not end ok",
                                                   Allowance.of(step), attempt=0))
                    continue
                if any(r is None for r in deps) or not self._fits(trial, step) or not any(
                        e.accepts(step) for e in self.engines):
                    continue
                trial.pending.remove(step_id)
                self._start(trial, step)
            self._maybe_finish(trial)

    def _fits(self, trial: _Trial, step: Step) -> bool:
        """The plan's admission rule over every trial's running steps: threads, and VRAM per GPU."""
        running = [s for _, s in self.jobs.values()]
        if sum(s.resources.threads for s in running) + step.resources.threads > self.budget:
            return False
        memory = {g.uuid: g.memory_mb for g in trial.plan.hardware.gpus}
        for uuid in step.resources.gpus:
            used = sum(s.limits.vram_cap_mb or 0 for s in running if uuid in s.resources.gpus)
            if used + (step.limits.vram_cap_mb or 0) > memory.get(uuid, 0):
                return False
        return True

    def _start(self, trial: _Trial, step: Step) -> None:
        step_dir = trial.rundir.fresh_step_dir(step.id)
        spec = job_spec(trial.plan, step, trial.rundir.path, step_dir, trial.facts,
                        self.trainers.run_step if self.trainers else None)
        timeout = float(step.limits.timeout_s)
        deadline = trial.plan.schedule.deadline_s
        if deadline is not None:
            timeout = min(timeout, deadline - (time.monotonic() - trial.started))
        spec["watch"] = {"timeout_s": timeout, "memory_cap_mb": step.limits.memory_cap_mb,
                         "poll_s": self.settings.poll_interval_s}
        write_text_atomic(step_dir / "step.json", json.dumps(spec, sort_keys=True, separators=(",", ":")))
        key = f"{trial.number}/{step.id}"
        trial.started_at[step.id] = round(time.time(), 3)
        job = Job(attrs.evolve(step, id=key), trial.rundir.path, step_dir, timeout, 1, self.token)
        engine = next(e for e in self.engines if e.accepts(job.step))
        try:
            facts = engine.start(job)
        except OSError as exc:
            self._record(trial, StepResult(step.id, "crashed", f"could not start: {exc}", Allowance.of(step), 1,
                                           trial.started_at[step.id]))
            return
        self.jobs[key] = (trial, step)
        self.job_engine[key] = engine
        trial.running[step.id] = step
        trial.rundir.journal.append("step_started", step=step.id, attempt=1, token=self.token, **facts)
        self.journal.append("step_started", trial=trial.number, step=step.id, token=self.token, **facts)

    def _close(self) -> None:
        for engine in self.engines:
            engine.close()

    def _end(self, end: JobEnd) -> None:
        trial, step = self.jobs.pop(end.step_id)
        self.job_engine.pop(end.step_id, None)
        trial.running.pop(step.id, None)
        outcome: Mapping[str, Any] = end.outcome or {}
        usage = outcome.get("usage") or {}
        status, detail, output = end.status, end.detail, dict(outcome.get("output") or {})
        self._report(trial, step.id, prune=False)  # what it logged since the last poll: the pruner compares it
        self.stopping.pop(end.step_id, None)
        if trial.pruned_at and status in ("ok", "cancelled"):  # stopped when told to, or killed
            status, detail = "pruned", f"pruned at {trial.pruned_at}"
            output["curve"] = trial.curves.get(step.id, [])
        self._record(trial, StepResult(
            step_id=step.id, status=status, detail=detail, allowed=Allowance.of(step), attempt=1,
            started_at=trial.started_at.get(step.id), wall_s=end.wall_s, cpu_s=end.cpu_s,
            peak_rss_mb=end.peak_rss_mb, threads_seen=end.threads_seen, pools=tuple(usage.get("pools") or ()),
            applied=outcome.get("applied") or {}, metrics=outcome.get("metrics") or {}, output=output,
            error=(outcome.get("error") or {}).get("traceback")))
        self._maybe_finish(trial)

    def _record(self, trial: _Trial, result: StepResult) -> None:
        """Write the step's result into the trial's run directory and journal it there and in the study's."""
        step_dir = trial.rundir.step_dir(result.step_id)
        step_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(step_dir / "result.json", _dumps(converter.unstructure(result)))
        if result.metrics:
            write_text_atomic(step_dir / "metrics.json", _dumps(thaw(result.metrics)))
        trial.rundir.journal.append("step_finished", step=result.step_id, status=result.status,
                                    detail=result.detail, wall_s=result.wall_s, adopted=False)
        self.journal.append("step_finished", trial=trial.number, step=result.step_id, status=result.status,
                            detail=result.detail, wall_s=result.wall_s)
        trial.results[result.step_id] = result

    def _maybe_finish(self, trial: _Trial) -> None:
        if trial.pending or trial.running or trial.number not in self.active:
            return
        del self.active[trial.number]
        results = tuple(trial.results[s] for s in trial.plan.schedule.order if s in trial.results)
        wall = round(time.monotonic() - trial.started, 3)
        summary = RunSummary.of(trial.plan.plan_hash, str(trial.rundir.path), results, wall)
        write_text_atomic(trial.rundir.path / "summary.json", _dumps(converter.unstructure(summary)))
        trial.rundir.journal.append("run_finished", counts=dict(summary.counts))
        trial.rundir.close()
        self._remember(trial, results, wall)
        statuses = {r.step_id: r.status for r in results}
        if trial.pruned_at:
            state, value, detail = "PRUNED", None, f"pruned at {trial.pruned_at}"
        else:
            value, detail = self._value(results)
            state = "COMPLETE" if value is not None else "FAIL"
        self._tell(trial.number, trial.handle, state, value, trial.params, detail, wall, trial.plan.plan_hash,
                   statuses, trial.retry_of)

    def _remember(self, trial: _Trial, results: Sequence[StepResult], wall: float) -> None:
        """Add the trial's steps to the history store, as a run's; a store that fails is journaled, not fatal."""
        if self.history is None:
            return
        from tkplan.runtime._history import record_run

        try:
            record_run(self.history, trial.plan, results, f"{trial.plan.plan_hash[:8]}-{self.token[:6]}",
                       trial.rundir.path, wall, self.size)
        except HistoryError as exc:
            self.journal.append("history_failed", trial=trial.number, store=str(self.history), error=str(exc))

    def _value(self, results: Sequence[StepResult]) -> tuple[float | None, str]:
        """The trial's value: the mean of its steps' metric on the validation split; or why there is none."""
        bad = [r for r in results if not r.ok]
        if bad:
            return None, f"step {bad[0].step_id} {bad[0].status}: {bad[0].detail}"
        values = []
        for r in results:
            found = _metric((r.metrics or {}).get(SPLIT) or {}, self.spec.metric)
            if found is None:
                return None, f"step {r.step_id} has no finite val {self.spec.metric}"
            values.append(found)
        if not values:
            return None, "the trial has no step"
        return sum(values) / len(values), ""

    def _tell(self, number: int, handle: Any, state: str, value: float | None, params: Mapping[str, Any],
              detail: str, wall: float | None, plan_hash: str, statuses: Mapping[str, str],
              retry_of: int | None) -> None:
        states = self.optuna.trial.TrialState
        if detail:
            handle.set_user_attr("detail", detail)
        if state == "COMPLETE":
            self.study.tell(handle, value)
        else:
            self.study.tell(handle, state=states.PRUNED if state == "PRUNED" else states.FAIL)
        directory = f"trials/{number:04d}" if plan_hash else ""
        record = TrialRecord(number, state, value, params, wall, detail, plan_hash, directory, statuses, retry_of)
        self.records[number] = record
        self.journal.append("trial_finished", trial=number, state=state, value=value, detail=detail, wall_s=wall)
        self._write_study()
        self.emit(self._event("finished", record))

    # -- intermediate values ---------------------------------------------------------------------------

    def _read_curves(self) -> None:
        """Report the new lines of each running step's ``epochs.jsonl``; prune a trial when the pruner says so."""
        for trial in list(self.active.values()):
            for step_id in list(trial.running):
                if trial.pruned_at:
                    break
                self._report(trial, step_id, prune=self.spec.pruner != "none")

    def _report(self, trial: _Trial, step_id: str, *, prune: bool) -> None:
        """Report the step's new epochs (each epoch once per trial); with ``prune``, stop the trial if told to."""
        for line in self._new_lines(trial, step_id):
            trial.curves.setdefault(step_id, []).append(line)
            k, loss = line.get("epoch"), line.get("val_loss")
            if trial.pruned_at or not isinstance(k, int) or not isinstance(loss, (int, float)) or k in trial.reported:
                continue
            trial.reported.add(k)
            trial.handle.report(loss if self.spec.direction == "minimize" else -loss, k)
            if prune and trial.handle.should_prune():
                self._prune(trial, k, float(loss))

    def _new_lines(self, trial: _Trial, step_id: str) -> list[dict[str, Any]]:
        path = trial.rundir.step_dir(step_id) / EPOCH_LOG
        offset = trial.offsets.get(step_id, 0)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return []
        whole = data[:data.rfind(b"\n") + 1]
        trial.offsets[step_id] = offset + len(whole)
        lines = []
        for text in whole.splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if isinstance(line, dict):
                    lines.append(line)
        return lines

    def _prune(self, trial: _Trial, k: int, loss: float) -> None:
        unit = "epoch" if all(s.family not in _ROUNDS for s in trial.plan.steps) else "round"
        trial.pruned_at = f"{unit} {k} (val loss {loss:.6g})"
        for step_id in list(trial.pending):
            trial.pending.remove(step_id)
            step = trial.steps[step_id]
            self._record(trial, StepResult(step_id, "pruned", f"not started: the trial was pruned at {unit} {k}",
                                           Allowance.of(step), attempt=0))
        deadline = time.monotonic() + self.settings.term_grace_s
        for step_id, step in list(trial.running.items()):
            key = f"{trial.number}/{step_id}"
            if step.family not in _ROUNDS:  # a network does not look for the stop file: killed at once
                self.job_engine[key].cancel(key)
                continue
            write_text_atomic(trial.rundir.step_dir(step_id) / STOP_FILE, trial.pruned_at + "\n")
            self.stopping[key] = deadline  # it stops at its next logged round; killed if not in time

    def _kill_unstopped(self) -> None:
        """Kill the pruned steps that did not stop by themselves within the grace."""
        now = time.monotonic()
        for key, deadline in list(self.stopping.items()):
            if key in self.job_engine and now >= deadline:
                del self.stopping[key]
                self.job_engine[key].cancel(key)

    # -- what the study file says ----------------------------------------------------------------------

    def _summary(self) -> StudySummary:
        records = self._all_records()
        done = [r for r in records if r.state == "COMPLETE" and r.value is not None]
        sign = -1.0 if self.spec.direction == "maximize" else 1.0
        best = min(done, key=lambda r: (sign * (r.value or 0.0), r.number)) if done else None  # ties: the first
        return StudySummary(str(self.dir), self.spec.name, self.spec.metric, self.spec.direction, records, best,
                            round(time.monotonic() - self.started, 3))

    def _all_records(self) -> tuple[TrialRecord, ...]:
        """Every trial of the storage, by number: as this driver recorded it, or as the storage has it."""
        records = dict(self.records)
        for frozen in self.study.get_trials(deepcopy=False):
            if frozen.number not in records:
                wall = (frozen.duration.total_seconds() if frozen.duration is not None else None)
                records[frozen.number] = TrialRecord(
                    frozen.number, frozen.state.name, frozen.value, frozen.params, wall,
                    str(frozen.user_attrs.get("detail", "")), str(frozen.user_attrs.get("plan_hash", "")),
                    str(frozen.user_attrs.get("directory", "")), retry_of=frozen.user_attrs.get("retry_of"))
        return tuple(records[n] for n in sorted(records))

    def _write_study(self) -> StudySummary:
        summary = self._summary()
        document = {"format": "tkplan.study/1", "name": summary.name, "metric": summary.metric,
                    "direction": summary.direction, "split": SPLIT, "storage": self.spec.storage,
                    "seed": self.spec.sampler_seed,
                    "best": None if summary.best is None else converter.unstructure(summary.best),
                    "trials": [converter.unstructure(t) for t in summary.trials], "counts": summary.counts()}
        write_text_atomic(self.dir / STUDY_FILE, _dumps(document))
        return summary

    def _event(self, kind: str, record: TrialRecord) -> TrialEvent:
        return TrialEvent(kind, record, tuple(sorted(self.active)), self._counted(), self.spec.trials,
                          round(time.monotonic() - self.started, 3))


_ROUNDS = ("lightgbm", "quantile_lightgbm", "xgboost")  # tkplan: ignore[constant]  families that log rounds



def _suggest(handle: Any, dist: Mapping[str, Any]) -> Any:
    """The trial's value for one searched key (Optuna's define-by-run API)."""
    key, kind = str(dist["key"]), dist["kind"]
    step = dist.get("step")
    if kind == "int":
        return handle.suggest_int(key, int(dist["low"]), int(dist["high"]), step=int(step or 1),
                                  log=bool(dist["log"]))
    if kind == "float":
        return handle.suggest_float(key, float(dist["low"]), float(dist["high"]), step=step, log=bool(dist["log"]))
    choices = [thaw(c) for c in dist["choices"]]
    if all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
        return handle.suggest_categorical(key, choices)
    texts = [json.dumps(c, sort_keys=True) for c in choices]  # Optuna's categories are scalars: lists go as JSON
    return json.loads(handle.suggest_categorical(key, texts))


def _metric(metrics: Mapping[str, Any], name: str) -> float | None:
    """``name`` in a step's split metrics: flat for one target, the mean over targets for several."""
    value = metrics.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    nested = [_metric(v, name) for v in metrics.values() if isinstance(v, Mapping)]
    found = [v for v in nested if v is not None]
    return sum(found) / len(found) if found and len(found) == len(nested) else None


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: thaw(v) for k, v in values.items()}


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
