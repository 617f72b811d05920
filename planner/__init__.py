"""The compile pipeline: profiles + overrides + hardware → a frozen, hashed plan. Imports no ML library.

.. versionadded:: 0.1
"""

from tkplan.planner._compile import CompileRequest as CompileRequest
from tkplan.planner._compile import Resolved as Resolved
from tkplan.planner._compile import compile_plan as compile_plan
from tkplan.planner._compile import load_hardware as load_hardware
from tkplan.planner._compile import resolve as resolve
from tkplan.planner._convert import converter as converter
from tkplan.planner._hardware import Gpu as Gpu
from tkplan.planner._hardware import HardwareSpec as HardwareSpec
from tkplan.planner._merge import Setting as Setting
from tkplan.planner._plan import FORMAT as FORMAT
from tkplan.planner._plan import Derivation as Derivation
from tkplan.planner._plan import Isolation as Isolation
from tkplan.planner._plan import Limits as Limits
from tkplan.planner._plan import Plan as Plan
from tkplan.planner._plan import Resources as Resources
from tkplan.planner._plan import Schedule as Schedule
from tkplan.planner._plan import Step as Step
from tkplan.planner._plan import plan_from_json as plan_from_json
from tkplan.planner._plan import plan_to_json as plan_to_json
from tkplan.planner._probe import probe as probe
from tkplan.planner._probe import probe_fingerprint as probe_fingerprint
from tkplan.planner._schemas import export_schemas as export_schemas

__all__ = [
    "FORMAT",
    "CompileRequest",
    "Derivation",
    "Gpu",
    "HardwareSpec",
    "Isolation",
    "Limits",
    "Plan",
    "Resolved",
    "Resources",
    "Schedule",
    "Setting",
    "Step",
    "compile_plan",
    "converter",
    "export_schemas",
    "load_hardware",
    "plan_from_json",
    "plan_to_json",
    "probe",
    "probe_fingerprint",
    "resolve",
]
