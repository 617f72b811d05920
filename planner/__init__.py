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
    "CompileRequest": "tkplan.planner._compile",
    "Resolved": "tkplan.planner._compile",
    "compile_plan": "tkplan.planner._compile",
    "load_hardware": "tkplan.planner._compile",
    "resolve": "tkplan.planner._compile",
    "converter": "tkplan.planner._convert",
    "DERIVED": "tkplan.planner._explain",
    "Explanation": "tkplan.planner._explain",
    "explain_config": "tkplan.planner._explain",
    "explain_plan": "tkplan.planner._explain",
    "Gpu": "tkplan.planner._hardware",
    "HardwareSpec": "tkplan.planner._hardware",
    "Setting": "tkplan.planner._merge",
    "FORMAT": "tkplan.planner._plan",
    "Derivation": "tkplan.planner._plan",
    "Isolation": "tkplan.planner._plan",
    "Limits": "tkplan.planner._plan",
    "Plan": "tkplan.planner._plan",
    "Resources": "tkplan.planner._plan",
    "Schedule": "tkplan.planner._plan",
    "Step": "tkplan.planner._plan",
    "plan_from_json": "tkplan.planner._plan",
    "plan_to_json": "tkplan.planner._plan",
    "read_plan": "tkplan.planner._plan",
    "probe": "tkplan.planner._probe",
    "SWEEP_FORMAT": "tkplan.planner._sweep",
    "Axis": "tkplan.planner._sweep",
    "Point": "tkplan.planner._sweep",
    "SweepPlan": "tkplan.planner._sweep",
    "compile_sweep": "tkplan.planner._sweep",
    "sweep_to_json": "tkplan.planner._sweep",
    "probe_fingerprint": "tkplan.planner._probe",
    "Distribution": "tkplan.planner._search",
    "Study": "tkplan.planner._search",
    "TuneSettings": "tkplan.planner._search",
    "best_profile": "tkplan.planner._search",
    "compile_trial": "tkplan.planner._search",
    "load_study": "tkplan.planner._search",
    "trials_at_once": "tkplan.planner._search",
    "export_schemas": "tkplan.planner._schemas",
}

__all__, __getattr__, __dir__ = lazy_exports("tkplan.planner", _EXPORTS)
