"""tkplan: compile an ML training campaign's configuration into one validated, hashed plan, and run it.

The public API, for scripts (README.md, "Python API"), is re-exported here lazily from the public packages
(`tkplan.planner`, `tkplan.runtime`, `tkplan.tools.audit`, `tkplan.errors`), so that ``import tkplan`` stays
cheap: a name's package is imported on its first use only. `execute` is the runtime's with the built-in
families as the default trainer (``tkplan._trainers``), as ``tkplan run`` runs a plan.

Example::

    import tkplan

    plan = tkplan.read_plan("plan.json")
    summary = tkplan.execute(plan, tkplan.default_run_dir(plan, Path.cwd()))
"""

from __future__ import annotations

from tkplan._lazy import lazy_exports

__version__ = "0.1.0"

_PLANNER = ("CompileRequest", "compile_plan", "load_hardware", "probe", "HardwareSpec", "Plan", "Step",
            "read_plan", "plan_from_json", "plan_to_json", "diff_plans")
_RUNTIME = ("execute", "default_run_dir", "ExecutorSettings", "RunSummary", "StepResult", "StepContext")
_AUDIT = ("audit", "AuditResult", "Finding")
_ERRORS = ("TkplanError", "Problem", "ConfigError", "ProfileNotFoundError", "HardwareError", "PlanningError",
           "PlanError", "DriftError", "RunDirError", "DiskFullError", "DataError", "AuditError")

_EXPORTS = {
    **dict.fromkeys(_PLANNER, "tkplan.planner"),
    **dict.fromkeys(_RUNTIME, "tkplan.runtime"),
    "execute": "tkplan._trainers",  # the runtime's, with the built-in families as the default trainer
    **dict.fromkeys(_AUDIT, "tkplan.tools.audit"),
    **dict.fromkeys(_ERRORS, "tkplan.errors"),
}

_names, __getattr__, _ = lazy_exports("tkplan", _EXPORTS)
__all__ = ["__version__", *_names]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
