"""The audit's data: one hardcoded value found in code (`Finding`), one file left out (`Skipped`).

The kinds of finding, the noise filters and the statuses are named here once, with the one-line
description that the reports, the SARIF rules and the README use.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

from tkplan.planner._convert import thaw

__all__ = [
    "ENV_KINDS",
    "KINDS",
    "NOISE_FILTERS",
    "STATUSES",
    "AuditResult",
    "Finding",
    "Skipped",
    "freeze_value",
    "value_text",
]

KINDS: Mapping[str, str] = {  # tkplan: ignore[constant]
    "setdefault": "d.setdefault('key', literal): a default written into code",
    "get_default": "cfg.get('key', literal), cfg.get('key') or literal, kwargs.pop('key', literal), "
    "getattr(cfg, 'key', literal) on a config-like object",
    "env_default": "os.getenv / os.environ.get with a literal default (or `os.getenv(...) or literal`)",
    "env_write": "a literal written into the environment: os.environ[...] =, .setdefault, .update, "
    "os.putenv, a child env dict, shell `export NAME=value`",
    "signature_default": "a literal keyword default in a function or method signature",
    "constructor_kwarg": "a literal keyword argument to an estimator, optimizer, scheduler, layer, "
    "callback or split constructor",
    "constant": "a module-level UPPER_CASE name bound to a literal",
    "argparse_default": "parser.add_argument(..., default=literal)",
    "threshold": "a literal bound in an ordering comparison (nan_ratio > 0.1)",
    "clamp": "a literal bound in min()/max()/clip()/clamp(), or a cpu_count() fallback",
    "shell_default": "${VAR:-default} (also :=, - and =) in a shell script",
    "call_kwarg": "a literal keyword argument of any call whose keyword names a setting (seed_everything(seed=7))",
    "positional_arg": "a literal number given by position to a layer, regulariser or callback (nn.Dropout(0.3))",
    "config_dict": "a dict entry whose key names a setting ({'learning_rate': 3e-4}, opts['timeout_s'] = 900)",
    "fallback": "a fallback: `workers = n or 8` on a setting name, `if limit is None: limit = 500`",
    "local": "a literal assigned to a setting-named local or attribute inside a function or class (patience = 6)",
    "process_setting": "a process-wide setting made by a call or attribute (torch.set_num_threads(4), "
    "np.set_printoptions(precision=4), torch.backends.cudnn.benchmark = True)",
    "config_file": "a leaf of a YAML, JSON or TOML configuration file inside the code tree",
}
"""Every kind of finding, by the name used in reports and in ``# tkplan: ignore[kind]``."""

ENV_KINDS = frozenset({"env_default", "env_write", "shell_default"})
"""Kinds whose key is an environment variable name: they map to the ``env`` table."""

NOISE_FILTERS: Mapping[str, str] = {  # tkplan: ignore[constant]
    "none": "the value None, unless a setdefault or get default gives it to a setting name",
    "trivial_numbers": "the integers 0, 1 and -1, unless the name they are given to names a setting "
    "(cfg.setdefault('subsample_freq', 1), BLAS_THREADS_DEFAULT = 1) or a process-wide setter takes them; "
    "also 0.0, 1.0 and -1.0 as clamp or threshold bounds (a fraction kept in [0, 1]) and as fallbacks or "
    "locals (accumulators); elsewhere floats such as 1.0 are kept: a written float is a tuned value",
    "empty": "empty strings and empty containers",
    "bool_defaults": "True/False as signature or argparse defaults, call keywords, dict entries and locals "
    "(on/off switches of an API: exist_ok=True)",
    "logging": "logging and verbosity: keys such as verbose, verbosity, log_level, log_*; env variables named "
    "*LOG_LEVEL*, *VERBOSITY*; level names such as 'INFO' as values",
    "private": "module constants and parameters whose name starts with '_' (implementation details)",
    "structural": "comparisons with len(), .ndim, .shape, .dim(), .size(), sys.version_info; "
    "keyword arguments that fix names, types and tensor layouts: name=, dtype=, device=, batch_first=, "
    "return_sequences=, return_state=, and padding= / data_format= given a mode name ('same'), also as "
    "setdefault and get keys; constants that hold a file name ('model.txt')",
    "text": "strings that span lines (templates, embedded code, help text)",
}
"""Every noise filter, all on by default; ``[tool.tkplan.audit] noise`` or ``--keep NAME`` switch them."""

STATUSES: Mapping[str, str] = {  # tkplan: ignore[constant]
    "unchecked": "no profiles were given to compare with",
    "not_centralised": "no profile holds this key: the value lives only in code",
    "duplicate": "a profile holds the same value: the code literal is a second source of truth",
    "drift": "a profile holds a different value: code and profile disagree",
}
"""The status of a finding after comparison with the profiles given to ``--profiles``."""


def freeze_value(value: Any) -> Any:
    """Return ``value`` with lists and sets made tuples (recursively); mappings keep their order."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze_value(v) for v in value)
    if isinstance(value, dict):
        return {k: freeze_value(v) for k, v in value.items()}
    return value


def value_text(value: Any) -> str:
    """Return ``value`` as compact JSON text (``0.1``, ``"sqrt"``, ``[256, 128]``): for tables and fingerprints."""
    return json.dumps(_plain(value), sort_keys=True, separators=(", ", ": "), ensure_ascii=False, default=repr)


@attrs.frozen
class Finding:
    """One hardcoded configuration value found in code.

    Attributes:
        path: the file, as a POSIX path built from the path given to the audit.
        line: 1-based line of the value (of the name, for ``constant``).
        col: 1-based column, in characters.
        kind: one of `KINDS`.
        key: the name the code gives the value: the dict key, the parameter, the env variable, the
            compared or clamped variable.
        value: the literal (lists as tuples).
        scope: the enclosing ``Class.method`` qualified name, ``""`` at module level.
        suggested_key: the dotted config key the value belongs under (``families.lightgbm.num_leaves``).
        status: one of `STATUSES`.
        profile_key: the profile key it was matched with, ``""`` when none.
        profile_value: the profile's value for ``profile_key``.
        profile_origin: ``file:line`` of that profile value.

    .. versionadded:: 0.1
    """

    path: str
    line: int
    col: int
    kind: str
    key: str
    value: Any = attrs.field(converter=freeze_value, hash=False)
    scope: str = ""
    suggested_key: str = ""
    status: str = "unchecked"
    profile_key: str = ""
    profile_value: Any = attrs.field(default=None, converter=freeze_value, hash=False)
    profile_origin: str = ""

    @property
    def location(self) -> str:
        """``path:line:col``."""
        return f"{self.path}:{self.line}:{self.col}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """The order of reports: by file, position, kind and key."""
        return (self.path, self.line, self.col, self.kind, self.key)

    def to_dict(self) -> dict[str, Any]:
        """Return the finding as JSON-ready data (tuples become lists)."""
        data = attrs.asdict(self, recurse=False)
        data["value"] = _plain(self.value)
        data["profile_value"] = _plain(self.profile_value)
        return data


@attrs.frozen
class Skipped:
    """A file or directory the audit did not scan, and why (syntax error, bad encoding, symlink loop...)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Return the entry as JSON-ready data."""
        return {"path": self.path, "reason": self.reason}


@attrs.frozen
class AuditResult:
    """What an audit found: findings and skipped files, both sorted; ``files`` counts the files scanned.

    Attributes:
        findings: every finding, sorted by `Finding.sort_key`.
        skipped: every file or directory left out, sorted by path.
        files: how many files were scanned (skipped ones excluded).
        notes: remarks that are not findings, e.g. an unknown kind in an ignore comment.

    .. versionadded:: 0.1
    """

    findings: tuple[Finding, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    files: int = 0
    notes: tuple[str, ...] = ()


def _plain(value: Any) -> Any:
    """``value`` as plain data, a non-finite float as its text (JSON has no inf/nan)."""
    return thaw(value, lambda v: repr(v) if isinstance(v, float) and not math.isfinite(v) else v)
