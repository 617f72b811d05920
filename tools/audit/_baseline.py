"""Baselines: the accepted findings of a tree, so that CI fails only on new ones.

A baseline file is a JSON list of fingerprints, sorted. A fingerprint names the file, kind, scope and
key of a finding and hashes its value, but holds no line or column: editing code above a finding does
not make it new, while changing its value does. Identical findings count: two in the baseline accept
two in the code, not three.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import attrs

from tkplan._io import write_text_atomic
from tkplan.errors import AuditError

from ._findings import AuditResult, Finding, value_text

__all__ = ["Baselined", "apply_baseline", "baseline_text", "fingerprint", "new_findings", "read_baseline"]


@attrs.frozen
class Baselined:
    """An audit seen through its baseline.

    Attributes:
        result: the audit with only the findings the baseline does not accept.
        known: how many findings the baseline accepted.
        written: the number of findings written into the baseline, or ``None`` when it was only read.
    """

    result: AuditResult
    known: int
    written: int | None = None


def apply_baseline(result: AuditResult, path: str | os.PathLike[str] | None, *, write: bool = False) -> Baselined:
    """Filter ``result`` through the baseline at ``path`` (no baseline: everything is new), or with ``write``
    accept every current finding by writing them all into it (atomically).

    Raises:
        AuditError: ``write`` without a path; the baseline cannot be read, is not a list of fingerprints, or
            cannot be written.
    """
    if path is None:
        if write:
            raise AuditError("--write-baseline needs --baseline FILE (or baseline = ... in [tool.tkplan.audit])")
        return Baselined(result, 0)
    if write:
        try:
            write_text_atomic(Path(path), baseline_text(result.findings), parents=False)
        except OSError as exc:
            raise AuditError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") from None
        return Baselined(attrs.evolve(result, findings=()), len(result.findings), len(result.findings))
    new = new_findings(result.findings, read_baseline(path))
    return Baselined(attrs.evolve(result, findings=new), len(result.findings) - len(new))


def fingerprint(finding: Finding) -> str:
    """``path:kind:scope:key:<12 hex digits of the value's sha256>``; no line number in it."""
    digest = hashlib.sha256(value_text(finding.value).encode("utf-8")).hexdigest()[:12]
    return f"{finding.path}:{finding.kind}:{finding.scope or '<module>'}:{finding.key}:{digest}"


def baseline_text(findings: Iterable[Finding]) -> str:
    """The baseline file's text for ``findings``: a sorted JSON list of fingerprints, one per line."""
    return json.dumps(sorted(fingerprint(f) for f in findings), indent=1, ensure_ascii=False) + "\n"


def read_baseline(path: str | os.PathLike[str]) -> Counter[str]:
    """Read a baseline file into a count of fingerprints.

    Raises:
        AuditError: the file is missing, unreadable or not a JSON list of strings.
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError(f"{source}: baseline file not found; create it with --write-baseline") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{source}: cannot read baseline: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AuditError(f"{source}: baseline is not JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise AuditError(f"{source}: a baseline must be a JSON list of fingerprint strings")
    return Counter(data)


def new_findings(findings: Iterable[Finding], baseline: Counter[str]) -> tuple[Finding, ...]:
    """The findings the baseline does not account for, in their order."""
    left = Counter(baseline)
    new = []
    for finding in findings:
        key = fingerprint(finding)
        if left[key] > 0:
            left[key] -= 1
        else:
            new.append(finding)
    return tuple(new)
