"""The compile pipeline: profiles + overrides + hardware → a frozen, hashed plan. Imports no ML library.

Names are re-exported lazily, so that importing one planner module does not load the whole pipeline
(``tkplan compile`` with unchanged inputs must answer from its cache without loading jsonschema or cattrs).

.. versionadded:: 0.1
"""

from __future__ import annotations

from tkplan._lazy import lazy_exports

_EXPORTS = {
    "Difference": "tkplan.planner._diff",
    "diff_plans": "tkplan.planner._diff",
    "entrypoint_files": "tkplan.planner._entrypoints",
    "CompileRequest": "tkplan.planner._compile",
    "Resolved": "tkplan.planner._compile",
    "compile_plan": "tkplan.planner._compile",
    "data_file": "tkplan.planner._compile",
    "load_base": "tkplan.planner._compile",
    "load_hardware": "tkplan.planner._compile",
    "resolve": "tkplan.planner._compile",
    "converter": "tkplan.planner._convert",
    "thaw": "tkplan.planner._convert",
    "FileFacts": "tkplan.planner._data",
    "file_source": "tkplan.planner._data",
    "DERIVED": "tkplan.planner._explain",
    "Explanation": "tkplan.planner._explain",
    "explain_config": "tkplan.planner._explain",
    "explain_plan": "tkplan.planner._explain",
    "Forecast": "tkplan.planner._forecast",
    "forecast": "tkplan.planner._forecast",
    "forecast_sweep": "tkplan.planner._forecast",
    "format_value": "tkplan.planner._grammar",
    "Gpu": "tkplan.planner._hardware",  # tkplan: ignore[config_dict]  an export table: names to modules
    "HardwareSpec": "tkplan.planner._hardware",
    "History": "tkplan.planner._history",
    "Observation": "tkplan.planner._history",
    "hardware_fingerprint": "tkplan.planner._history",
    "Setting": "tkplan.planner._merge",
    "ENV_PREFIX": "tkplan.planner._overrides",
    "LEGACY_ENV": "tkplan.planner._overrides",
    "FORMAT": "tkplan.planner._plan",
    "Derivation": "tkplan.planner._plan",
    "Isolation": "tkplan.planner._plan",
    "Limits": "tkplan.planner._plan",
    "POOL_VARIABLES": "tkplan.planner._plan",
    "Plan": "tkplan.planner._plan",
    "Resources": "tkplan.planner._plan",
    "Schedule": "tkplan.planner._plan",
    "Step": "tkplan.planner._plan",
    "ThreadLimits": "tkplan.planner._plan",
    "can_start": "tkplan.planner._plan",
    "fits_alone": "tkplan.planner._plan",
    "plan_from_json": "tkplan.planner._plan",
    "plan_to_json": "tkplan.planner._plan",
    "read_plan": "tkplan.planner._plan",
    "probe": "tkplan.planner._probe",
    "PROJECT_FILE": "tkplan.planner._sources",
    "SearchPath": "tkplan.planner._sources",
    "shipped_dir": "tkplan.planner._sources",
    "SWEEP_FORMAT": "tkplan.planner._sweep",
    "Axis": "tkplan.planner._sweep",
    "Point": "tkplan.planner._sweep",  # tkplan: ignore[config_dict]  an export table: names to modules
    "SweepPlan": "tkplan.planner._sweep",
    "compile_sweep": "tkplan.planner._sweep",
    "sweep_chunks": "tkplan.planner._sweep",
    "sweep_to_json": "tkplan.planner._sweep",
    "SharedStep": "tkplan.planner._sweep_schedule",
    "SweepSchedule": "tkplan.planner._sweep_schedule",
    "sweep_schedule": "tkplan.planner._sweep_schedule",
    "read_runnable": "tkplan.planner._sweep_file",
    "read_sweep": "tkplan.planner._sweep_file",
    "run_record": "tkplan.planner._sweep_file",
    "sweep_from_json": "tkplan.planner._sweep_file",
    "probe_fingerprint": "tkplan.planner._probe",
    "Distribution": "tkplan.planner._search",
    "Study": "tkplan.planner._search",
    "TuneSettings": "tkplan.planner._search",
    "best_profile": "tkplan.planner._search",
    "compile_trial": "tkplan.planner._search",
    "load_study": "tkplan.planner._search",
    "trials_at_once": "tkplan.planner._search",
    "export_schemas": "tkplan.planner._schemas",
    "dump_yaml": "tkplan.planner._yaml",
    "read_file": "tkplan.planner._yaml",
}

__all__, __getattr__, __dir__ = lazy_exports("tkplan.planner", _EXPORTS)
