"""``tkplan audit``: find the hardcoded configuration values in a code base, by machine.

Every hyperparameter, thread count, env default, threshold and timeout written into code is a value
that a profile should hold. `audit` walks Python, shell and config (YAML, JSON, TOML) files, parses
each Python file once with `ast` (one pass, a process pool for large trees), and reports each literal
default with its location, kind, key, enclosing scope and a suggested config key. With profiles it
says whether each value is only in code, duplicated in a profile, or has drifted from it.
`render_profile` turns findings into a draft profile; a baseline (`apply_baseline`; `baseline_text`,
`read_baseline`, `new_findings`) turns the audit into a CI gate.

Example::

    from tkplan.tools.audit import audit, render
    result = audit(["src/"], profiles=["profiles/"])
    print(render(result, "table"))

Kinds, noise filters and statuses: `KINDS`, `NOISE_FILTERS`, `STATUSES`; README.md next to this file.
"""

from ._audit import audit as audit
from ._baseline import Baselined as Baselined
from ._baseline import apply_baseline as apply_baseline
from ._baseline import baseline_text as baseline_text
from ._baseline import fingerprint as fingerprint
from ._baseline import new_findings as new_findings
from ._baseline import read_baseline as read_baseline
from ._config import AuditSettings as AuditSettings
from ._config import ProjectConfig as ProjectConfig
from ._config import find_pyproject as find_pyproject
from ._config import load_project_config as load_project_config
from ._emit import render_profile as render_profile
from ._findings import KINDS as KINDS
from ._findings import NOISE_FILTERS as NOISE_FILTERS
from ._findings import STATUSES as STATUSES
from ._findings import AuditResult as AuditResult
from ._findings import Finding as Finding
from ._findings import Skipped as Skipped
from ._profiles import ProfileIndex as ProfileIndex
from ._profiles import load_profiles as load_profiles
from ._profiles import mark_findings as mark_findings
from ._report import FORMATS as FORMATS
from ._report import render as render
from ._report import report_data as report_data

__all__ = [
    "FORMATS",
    "KINDS",
    "NOISE_FILTERS",
    "STATUSES",
    "AuditResult",
    "AuditSettings",
    "Baselined",
    "Finding",
    "ProfileIndex",
    "ProjectConfig",
    "Skipped",
    "apply_baseline",
    "audit",
    "baseline_text",
    "find_pyproject",
    "fingerprint",
    "load_profiles",
    "load_project_config",
    "mark_findings",
    "new_findings",
    "read_baseline",
    "render",
    "render_profile",
    "report_data",
]
