"""The executor: runs a compiled plan exactly, step by step, and records what happened.

``execute(plan, run_dir)`` is ``tkplan run``. Steps run on an engine (``local`` by default: a child process
per step, see ``tkplan.runtime._local``; ``ray``: a Ray task per step, see ``tkplan.runtime._ray``);
trainers receive a `StepContext`. Names are re-exported lazily, so
that a step's child, which imports ``tkplan.runtime._child``, loads nothing else of the runtime.

.. versionadded:: 0.1
"""

from __future__ import annotations

from tkplan._lazy import lazy_exports

_EXPORTS = {
    "EPOCH_LOG": "tkplan.runtime._context",
    "StepContext": "tkplan.runtime._context",
    "Trainers": "tkplan.runtime._context",
    "check_drift": "tkplan.runtime._drift",
    "hardware_differences": "tkplan.runtime._drift",
    "DEFAULT_ENGINE": "tkplan.runtime._engine",
    "ENTRY_POINT_GROUP": "tkplan.runtime._engine",
    "Engine": "tkplan.runtime._engine",
    "Job": "tkplan.runtime._engine",
    "JobEnd": "tkplan.runtime._engine",
    "engine_names": "tkplan.runtime._engine",
    "get_engine": "tkplan.runtime._engine",
    "register_engine": "tkplan.runtime._engine",
    "DataReady": "tkplan.runtime._events",
    "Event": "tkplan.runtime._events",
    "Heartbeat": "tkplan.runtime._events",
    "HistoryRecorded": "tkplan.runtime._events",
    "RunFinished": "tkplan.runtime._events",
    "RunStarted": "tkplan.runtime._events",
    "StepFinished": "tkplan.runtime._events",
    "StepStarted": "tkplan.runtime._events",
    "execute": "tkplan.runtime._executor",
    "exec_step": "tkplan.runtime._exec",
    "execute_sweep": "tkplan.runtime._executor",
    "read_journal": "tkplan.runtime._journal",
    "RunRecord": "tkplan.runtime._history",
    "forget": "tkplan.runtime._history",
    "list_runs": "tkplan.runtime._history",
    "read_history": "tkplan.runtime._history",
    "record_run": "tkplan.runtime._history",
    "step_observations": "tkplan.runtime._history",
    "RayEngine": "tkplan.runtime._ray",
    "RayOptions": "tkplan.runtime._ray",
    "probe_cluster": "tkplan.runtime._ray",
    "STATUSES": "tkplan.runtime._results",
    "Allowance": "tkplan.runtime._results",
    "RunSummary": "tkplan.runtime._results",
    "StepResult": "tkplan.runtime._results",
    "default_run_dir": "tkplan.runtime._rundir",
    "fresh_run_dir": "tkplan.runtime._rundir",
    "project_root": "tkplan.runtime._datacheck",
    "ExecutorSettings": "tkplan.runtime._settings",
    "StudySpec": "tkplan.runtime._study",
    "StudySummary": "tkplan.runtime._study",
    "TrialEvent": "tkplan.runtime._study",
    "TrialRecord": "tkplan.runtime._study",
    "run_study": "tkplan.runtime._study",
    "study_importances": "tkplan.runtime._study",
    "study_state": "tkplan.runtime._study",
    "shell_exports": "tkplan.runtime._stepenv",
    "SweepRun": "tkplan.runtime._sweeprun",
    "default_sweep_dir": "tkplan.runtime._sweeprun",
    "step_environment": "tkplan.runtime._stepenv",
}

__all__, __getattr__, __dir__ = lazy_exports("tkplan.runtime", _EXPORTS)
