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

from tkplan.errors import AuditError

from ._findings import Finding, value_text

__all__ = ["baseline_text", "fingerprint", "new_findings", "read_baseline"]


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
