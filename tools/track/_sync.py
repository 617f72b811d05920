"""Sync a run directory to MLflow: a parent run for the run directory, a nested run per step that ended.

Idempotent: ``mlflow.json`` in the run directory records, per tracking URI, the experiment, the parent run
and each step's MLflow run id with a digest of what was logged; the runs themselves carry the tags
``plan_hash``, ``tkplan.run_dir`` and ``tkplan.step``, so a sync interrupted before it saved the file finds
its runs again. Syncing again logs only what changed (a step
that ``--resume`` ran again, a parent run that finished) into the same MLflow runs, and creates no run for
what is already there; a run deleted from the store is created again. Each run's values go in as few
``log_batch`` calls as MLflow's limits allow.

The default store is a SQLite database in the run directory, ``sqlite:///RUN_DIR/mlflow.db``. An experiment
this creates in a local store (``sqlite:``, ``file:``, a path) keeps its artifacts under
``RUN_DIR/mlartifacts`` (never MLflow's ``./mlruns`` in the working directory); a tracking server keeps them
where it is configured to.
``mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow.db`` shows it.

A study directory (``tkplan tune``) goes to one experiment named after the study, its store by default
``sqlite:///STUDY_DIR/mlflow.db``: a run for the study, and nested in it a run per trial. A trial's run is its
run directory's parent run, synced as a run directory is (the trial's steps nested in it, the trial's
``mlflow.json`` in ``trials/NNNN/``); a trial the planner could not compile has no run directory and its run
holds what the study recorded (params, state, detail), no step. The study's ``mlflow.json`` records the
study's run and those trials' runs (tagged ``tkplan.run_dir`` (the study directory) and ``tkplan.trial``).
After ``tkplan tune --resume``, syncing again creates only the new trials' runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from tkplan._io import write_text_atomic
from tkplan.errors import ExtraMissingError, RunDirError, TrackingError
from tkplan.runtime import read_journal, study_state
from tkplan.tools.report import RunView, load_run
from tkplan.tools.track._batch import Limits, batches, fit_value
from tkplan.tools.track._content import RunContent, parent_content, step_content, study_content, trial_content

__all__ = ["STATE_FILE", "StudySyncReport", "SyncReport", "Tracker", "default_uri", "sync"]

STATE_FILE = "mlflow.json"  # tkplan: ignore[constant]  the run directory's layout
_FORMAT = "tkplan.mlflow/1"  # tkplan: ignore[constant]  the state file's format
_QUIET = ("mlflow", "alembic")
_SERVERS = ("http://", "https://", "databricks")
_PAGE = 1000


@attrs.frozen
class SyncReport:
    """What a sync did.

    Attributes:
        uri: the tracking URI; experiment_id and parent_run_id: where the run directory went.
        created: steps whose MLflow run was created now; updated: steps whose run was logged to again;
        unchanged: steps already in the store as they are. ``parent``: ``"created"``, ``"updated"`` or
        ``"unchanged"``.
    """

    uri: str
    experiment_id: str
    parent_run_id: str
    parent: str
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]


@attrs.frozen
class StudySyncReport:
    """What a sync of a study directory did.

    Attributes:
        uri: the tracking URI; experiment_id and study_run_id: where the study went.
        study: ``"created"``, ``"updated"`` or ``"unchanged"``: the study's run.
        trials: trial number → the same, for the trial's run.
        runs: trial number → the sync of the trial's run directory (its ``parent_run_id``: the trial's run; its
            steps), for each trial that has one.
    """

    uri: str
    experiment_id: str
    study_run_id: str
    study: str
    trials: Mapping[int, str]
    runs: Mapping[int, SyncReport]


def default_uri(run_dir: Path) -> str:
    """The SQLite store inside ``run_dir``."""
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def sync(run_dir: Path, uri: str | None = None) -> SyncReport | StudySyncReport:
    """Log ``run_dir``, a run directory or a study directory, to the MLflow store at ``uri`` (default:
    `default_uri`); see the module docstring.

    Raises:
        ExtraMissingError: MLflow is not installed (the extra ``track``).
        TrackingError: the store cannot be reached, or it refused a value.
        RunDirError, PlanError: ``run_dir`` is not a readable run or study directory.
    """
    run_dir = Path(run_dir)
    tracker = Tracker(run_dir, uri)
    if not (run_dir / "plan.json").is_file() and (run_dir / "study.json").is_file():
        return tracker.sync_study(_study(run_dir))
    return tracker.sync(load_run(run_dir))


def _study(study_dir: Path) -> Mapping[str, Any]:
    """``study_dir/study.json``, checked for what a sync reads of it."""
    study = study_state(study_dir)
    trials = study.get("trials")
    named = all(isinstance(study.get(k), str) for k in ("name", "metric", "direction"))
    if not named or not isinstance(trials, list) or not all(
            isinstance(t, dict) and isinstance(t.get("number"), int) and isinstance(t.get("state"), str)
            for t in trials):
        raise RunDirError(f"{study_dir / 'study.json'}: not a study file; the study directory was damaged or edited")
    return study


class Tracker:
    """One run or study directory's link to one MLflow store; `sync` and `sync_study` log what changed since
    the last call.

    The store's runs of the directory (tagged ``tkplan.run_dir``) are listed once per tracker, in pages: a run
    the state file does not know — a sync killed before it saved — is found there by its ``tkplan.step`` (a
    study's: ``tkplan.trial``) tag and logged to again, never created twice.
    """

    def __init__(self, run_dir: Path, uri: str | None = None, *, client: Any = None) -> None:
        self.run_dir = Path(run_dir)
        self.uri = uri or default_uri(self.run_dir)
        self.limits: Limits | None = None
        self._client: Any = client  # a study's trackers share its client
        self._runs: dict[str, tuple[str, dict[str, str]]] | None = None  # step id or "parent" → run id, params

    def sync(self, view: RunView, only: tuple[str, ...] | None = None, *, within: tuple[str, str] | None = None,
             parent: RunContent | None = None) -> SyncReport:
        """Log the parent run and the steps of ``view`` that ended (only those in ``only`` when given; the
        parent then only when it is not in the store yet).

        Args:
            view: the run directory.
            only: the steps to log, when not all.
            within: ``(experiment id, run id)``: the parent run goes in that experiment, nested in that run (a
                trial's in its study's).
            parent: the parent run's content, when not `parent_content` of ``view`` (a trial's).
        """
        with self._session() as (client, store):
            experiment_id = (within[0] if within else store.get("experiment_id")) or self._experiment(
                client, f"tkplan/{view.plan.config['run']['name']}")
            store["experiment_id"] = experiment_id
            runs = self._known(client, experiment_id, f"tags.plan_hash = '{view.plan.plan_hash}' and "
                               f"tags.`tkplan.run_dir` = '{_quoted(view.path)}'", "tkplan.step")
            if only is None or "parent" not in runs:
                parent_outcome = self._put(client, experiment_id, store, "parent", parent or parent_content(view),
                                           within[1] if within else None)
            else:
                parent_outcome = "unchanged"
            parent_id = runs["parent"][0]
            outcomes: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
            steps = store.setdefault("steps", {})
            for step_id in view.plan.schedule.order:
                result = view.results.get(step_id)
                if result is None or (only is not None and step_id not in only):
                    continue
                content = step_content(view, view.plan.step(step_id), result)
                outcomes[self._put(client, experiment_id, steps, step_id, content, parent_id)].append(step_id)
        return SyncReport(self.uri, experiment_id, parent_id, parent_outcome, *map(tuple, outcomes.values()))

    def sync_study(self, study: Mapping[str, Any]) -> StudySyncReport:
        """Log the study of this (study) directory, ``study`` its ``study.json``: the study's run, a nested run per
        trial, each trial's run directory synced into its run (its own ``mlflow.json`` in it)."""
        journal = read_journal(self.run_dir / "journal.jsonl")
        planned = {t["number"]: self.run_dir / t["directory"] for t in study["trials"]
                   if t.get("directory") and (self.run_dir / t["directory"] / "plan.json").is_file()}
        outcomes: dict[int, str] = {}
        with self._session() as (client, store):
            experiment_id = store.get("experiment_id") or self._experiment(client, f"tkplan/{study['name']}")
            store["experiment_id"] = experiment_id
            runs = self._known(client, experiment_id, f"tags.`tkplan.run_dir` = '{_quoted(self.run_dir)}'",
                               "tkplan.trial")
            content = study_content(self.run_dir, study, journal)
            study_outcome = self._put(client, experiment_id, store, "parent", content, None)
            study_run_id = runs["parent"][0]
            unplanned = store.setdefault("trials", {})
            for trial in study["trials"]:
                if trial["number"] not in planned:  # never compiled: what the study recorded, no steps
                    outcomes[trial["number"]] = self._put(client, experiment_id, unplanned, str(trial["number"]),
                                                          trial_content(self.run_dir, trial, None, journal),
                                                          study_run_id)
        reports = {}
        for trial in study["trials"]:
            if trial["number"] in planned:
                view = load_run(planned[trial["number"]])
                tracker = Tracker(view.path, self.uri, client=client)
                reports[trial["number"]] = tracker.sync(view, within=(experiment_id, study_run_id),
                                                        parent=trial_content(self.run_dir, trial, view, journal))
                outcomes[trial["number"]] = reports[trial["number"]].parent
        return StudySyncReport(self.uri, experiment_id, study_run_id, study_outcome, dict(sorted(outcomes.items())),
                               reports)

    @contextlib.contextmanager
    def _session(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """The client and this store's records in the state file, saved on the way out (even on an error)."""
        with _mlflow_errors(self.uri):
            client = self._connect()
            state = self._state()
            try:
                yield client, state["stores"].setdefault(self.uri, {})
            finally:
                self._save(state)

    # -- MLflow ------------------------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._client is None:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # never phone home from a training box
            try:
                from mlflow import MlflowClient
            except ImportError:
                raise ExtraMissingError("tracking", "track", "MLflow") from None
            for name in _QUIET:  # MLflow sets its logger's level when imported
                logging.getLogger(name).setLevel(logging.WARNING)
            self._client = MlflowClient(tracking_uri=self.uri)
        if self.limits is None:
            self.limits = Limits()
        return self._client

    def _experiment(self, client: Any, name: str) -> str:
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        local = not self.uri.startswith(_SERVERS)  # a server keeps artifacts where it is configured to
        location = (self.run_dir.resolve() / "mlartifacts").as_uri() if local else None
        return str(client.create_experiment(name, artifact_location=location))

    def _known(self, client: Any, experiment_id: str, query: str,
               key: str) -> dict[str, tuple[str, dict[str, str]]]:
        """The store's live runs of this directory (those ``query`` finds): their tag ``key`` (a step id, a
        trial number; ``"parent"`` for the run without it) → run id, params."""
        if self._runs is None:
            self._runs = {}
            token = None
            while True:
                page = client.search_runs([experiment_id], filter_string=query, max_results=_PAGE, page_token=token)
                for run in page:
                    self._runs.setdefault(run.data.tags.get(key, "parent"), (run.info.run_id, dict(run.data.params)))
                token = page.token
                if not token:
                    break
        return self._runs

    def _put(self, client: Any, experiment_id: str, records: dict[str, Any], key: str, content: RunContent,
             parent_id: str | None) -> str:
        """Create or update the MLflow run ``records[key]`` so that it holds ``content``: ``"created"``,
        ``"updated"`` or ``"unchanged"``."""
        from mlflow.entities import Metric, Param, RunTag

        digest = content.digest()
        before = records.get(key) or {}
        runs = self._runs if self._runs is not None else {}
        run_id, logged_params = runs.get(key, (None, {}))
        if run_id is not None and before.get("run_id") == run_id and before.get("digest") == digest:
            return "unchanged"
        outcome = "updated" if run_id is not None else "created"
        if run_id is None:
            found_by = {"mlflow.parentRunId": parent_id} if parent_id else {}
            found_by.update({k: content.tags[k] for k in ("plan_hash", "tkplan.run_dir", "tkplan.step", "tkplan.trial")
                             if k in content.tags})
            run_id = client.create_run(experiment_id, start_time=content.start_ms, tags=found_by,
                                       run_name=content.name).info.run_id
            runs[key] = (run_id, logged_params)
        limits = self.limits or Limits()
        timestamp = content.end_ms or content.start_ms or 0
        params = [Param(k[:limits.key], fit_value(v, limits.param_value)) for k, v in content.params.items()
                  if len(k) <= limits.key and logged_params.get(k) != fit_value(v, limits.param_value)]
        tags = [RunTag(k, fit_value(v, limits.tag_value)) for k, v in content.tags.items() if len(k) <= limits.key]
        metrics = [Metric(k, v, timestamp, s) for k, v, s in content.metrics if len(k) <= limits.key]
        logged_params.update({p.key: p.value for p in params})
        for m, p, t in batches(metrics, params, tags, limits):
            client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)
        for path in content.artifacts:
            client.log_artifact(run_id, str(path))
        for name, text in content.texts.items():
            client.log_text(run_id, text, name)
        if content.status == "RUNNING":
            client.update_run(run_id, status="RUNNING")
        else:
            client.set_terminated(run_id, status=content.status, end_time=content.end_ms)
        records[key] = {"run_id": run_id, "digest": digest}
        return outcome

    # -- the state file ----------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        path = self.run_dir / STATE_FILE
        try:
            state = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return {"format": _FORMAT, "stores": {}}
        except (OSError, ValueError) as exc:
            raise TrackingError(f"{path}: unreadable ({exc}); delete it to sync the run again from scratch") from None
        if not isinstance(state, dict) or state.get("format") != _FORMAT or not isinstance(state.get("stores"), dict):
            raise TrackingError(f"{path}: not a tkplan MLflow state file; delete it to sync the run again")
        return state

    def _save(self, state: dict[str, Any]) -> None:
        write_text_atomic(self.run_dir / STATE_FILE, json.dumps(state, indent=1, sort_keys=True) + "\n")


def _quoted(path: Path) -> str:
    """``path``, resolved, as a string inside single quotes in an MLflow filter."""
    return str(Path(path).resolve()).replace("'", "\\'")


@contextlib.contextmanager
def _mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow's chatter down to warnings; its exceptions as a `TrackingError` naming the store."""
    loggers = [logging.getLogger(name) for name in _QUIET]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    except (TrackingError, ExtraMissingError):
        raise
    except Exception as exc:
        module = type(exc).__module__.split(".")[0]
        if module not in ("mlflow", "sqlalchemy", "alembic", "requests", "urllib3") and not isinstance(exc, OSError):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"MLflow store {uri}: {message}", uri=str(uri)) from None
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
