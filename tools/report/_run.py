"""A run directory as the reports see it: the plan, each step's result, the journal, and what a sweep or a
study left there. Reading only; nothing here writes.

A run directory holds ``plan.json``, ``journal.jsonl`` and ``steps/<id>/result.json`` (see
``tkplan.runtime._rundir``). A sweep's directory also holds ``sweep.json`` and a study's ``study.json``;
their shapes (read by `tkplan.tools.report._sections`) are::

    sweep.json  {"axes": {KEY: [VALUE, ...]}, "points": [{"values": {KEY: VALUE}, "steps": [STEP_ID, ...]}]}
    study.json  {"name": NAME, "direction": "maximize" | "minimize", "metric": NAME, "split": "val",
                 "storage": URL | null (null: optuna.journal beside it), "seed": the sampler's seed,
                 "trials": [{"number": N, "state": "COMPLETE" | "PRUNED" | "FAIL" | "RUNNING", "value": X | null,
                             "params": {KEY: VALUE}, "duration_s": S | null, "detail": TEXT,
                             "directory": "trials/NNNN", "plan_hash": HASH, "steps": {STEP_ID: STATUS},
                             "retry_of": N | null}],
                 "best": TRIAL | null, "counts": {STATE: N}}

A study's directory (``tkplan tune``) holds ``study.json`` and each trial's run directory under ``trials/``,
but no plan of its own: it reads as the run of its best trial (or, before one completed, its latest trial),
with the study's file as its ``study`` extra, and in it ``"importances": {KEY: WEIGHT}``: the parameters'
importances, computed from the study's storage (`tkplan.runtime.study_importances`) unless the file has them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tkplan.errors import RunDirError
from tkplan.planner._convert import converter, first_error
from tkplan.planner._plan import Plan, read_plan
from tkplan.runtime import StepResult, read_journal, study_importances

__all__ = ["RunView", "load_run", "log_tail"]

_EXTRAS = ("sweep", "study")


@attrs.frozen
class RunView:
    """Everything a report shows, read from one run directory.

    Attributes:
        path: the run directory.
        plan: its plan.
        results: step id → the step's result, for the steps that have ended.
        journal: the journal's records, in order.
        extras: ``"sweep"`` / ``"study"`` → the content of ``sweep.json`` / ``study.json``, when present.
    """

    path: Path
    plan: Plan
    results: Mapping[str, StepResult]
    journal: tuple[Mapping[str, Any], ...]
    extras: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def kind(self) -> str:
        """``"study"``, ``"sweep"`` or ``"campaign"``: what the directory holds."""
        return next((k for k in ("study", "sweep") if k in self.extras), "campaign")

    def ordered_results(self) -> list[StepResult]:
        """The results in the plan's order."""
        return [self.results[s] for s in self.plan.schedule.order if s in self.results]


def load_run(run_dir: Path) -> RunView:
    """Read ``run_dir``.

    Raises:
        RunDirError: not a run directory, or a damaged journal, result, sweep.json or study.json.
        PlanError: its plan.json is not a valid plan.
    """
    run_dir = Path(run_dir)
    plan_file = run_dir / "plan.json"
    if not plan_file.is_file() and (run_dir / "study.json").is_file():
        return _study_run(run_dir)
    if not plan_file.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no plan.json); give the directory `tkplan run` wrote")
    plan = read_plan(plan_file)
    results = {}
    for step_id in plan.schedule.order:
        path = run_dir / "steps" / step_id / "result.json"
        if path.exists() or path.is_symlink():
            results[step_id] = _read_result(path, step_id)
    extras = {name: _read_json(run_dir / f"{name}.json") for name in _EXTRAS if (run_dir / f"{name}.json").is_file()}
    return RunView(run_dir, plan, results, tuple(read_journal(run_dir / "journal.jsonl")), extras)


def _study_run(study_dir: Path) -> RunView:
    """A study's directory as the run of its best trial (or its latest trial with a plan), the study attached."""
    study = _read_json(study_dir / "study.json")
    trials = study.get("trials") if isinstance(study, dict) else None
    if not isinstance(trials, list):
        raise RunDirError(f"{study_dir / 'study.json'}: not a study file; the study directory was damaged or edited")
    best = study.get("best") or {}
    planned = [t for t in trials if isinstance(t, dict) and t.get("directory")]
    chosen = [t.get("directory") for t in planned if t.get("number") == best.get("number")]
    chosen += [t.get("directory") for t in reversed(planned)]
    study = {**study, "importances": study.get("importances") or study_importances(study_dir, study)}
    for directory in chosen:
        if (study_dir / str(directory) / "plan.json").is_file():
            view = load_run(study_dir / str(directory))
            return attrs.evolve(view, extras={**view.extras, "study": study})
    raise RunDirError(f"{study_dir} holds a study with no trial run yet; run `tkplan tune` with --resume")


def log_tail(run_dir: Path, step_id: str, lines: int) -> str:
    """The last ``lines`` lines of a step's ``stderr.log`` (then ``stdout.log``), or ``""``."""
    for name in ("stderr.log", "stdout.log"):
        path = Path(run_dir) / "steps" / step_id / name
        try:
            text = path.read_bytes()[-lines * 400:].decode("utf-8", "replace")
        except OSError:
            continue
        if text.strip():
            return "\n".join(text.rstrip("\n").split("\n")[-lines:])
    return ""


def _read_result(path: Path, step_id: str) -> StepResult:
    """A step's ``result.json``, checked: readable JSON of a `StepResult` of that step."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read the step's result: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise RunDirError(f"{path}: not a step result (damaged or truncated: {first_error(exc)[:200]}); "
                          "the run directory was damaged or edited") from None
    try:
        result = converter.structure(data, StepResult)
    except Exception as exc:  # cattrs raises exception groups for a wrong structure
        raise RunDirError(f"{path}: not a step result ({first_error(exc)[:200]}); "
                          "the run directory was damaged or edited") from None
    if result.step_id != step_id:
        raise RunDirError(f"{path}: the result of step {result.step_id!r}, not of {step_id!r}")
    return result


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RunDirError(f"{path}: unreadable ({exc.strerror or exc}); the run directory was damaged") from None
    except (ValueError, RecursionError) as exc:
        raise RunDirError(f"{path}: unreadable (damaged or truncated: {str(exc)[:200]}); the run directory was "
                          "damaged or edited") from None
