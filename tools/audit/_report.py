"""Render an audit result as a table, JSON, YAML or SARIF 2.1.0 text. Pure functions: text in, text out.

JSON and YAML share one document::

    {"format": "tkplan.audit/1",
     "summary": {"files": 12, "findings": 40, "skipped": 1, "known": 0,
                 "by_kind": {"constant": 3, ...}, "by_status": {"unchecked": 40}},
     "findings": [{"path": ..., "line": ..., "col": ..., "kind": ..., "key": ..., "value": ...,
                   "scope": ..., "suggested_key": ..., "status": ..., "profile_key": ...,
                   "profile_value": ..., "profile_origin": ..., "fingerprint": ...}, ...],
     "skipped": [{"path": ..., "reason": ...}, ...],
     "notes": [...]}

``known`` counts the findings a baseline accepted and left out of ``findings``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tkplan._text import aligned

from ._baseline import fingerprint
from ._findings import KINDS, AuditResult, Finding, value_text

__all__ = ["FORMATS", "render", "report_data"]

FORMATS = ("table", "json", "yaml", "sarif")  # tkplan: ignore[constant]
"""The output formats of `render`."""

_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_TABLE_VALUE_WIDTH = 40


def report_data(result: AuditResult, *, known: int = 0) -> dict[str, Any]:
    """The JSON-ready document of a result (see the module docstring)."""
    findings = []
    for finding in result.findings:
        item = finding.to_dict()
        item["fingerprint"] = fingerprint(finding)
        findings.append(item)
    return {
        "format": "tkplan.audit/1",
        "summary": _summary(result, known),
        "findings": findings,
        "skipped": [s.to_dict() for s in result.skipped],
        "notes": list(result.notes),
    }


def _summary(result: AuditResult, known: int) -> dict[str, Any]:
    return {
        "files": result.files,
        "findings": len(result.findings),
        "skipped": len(result.skipped),
        "known": known,
        "by_kind": dict(sorted(Counter(f.kind for f in result.findings).items())),
        "by_status": dict(sorted(Counter(f.status for f in result.findings).items())),
    }


def render(result: AuditResult, fmt: str, *, known: int = 0, version: str = "") -> str:
    """Render ``result`` in ``fmt`` (one of `FORMATS`); ``known`` = findings a baseline left out.

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "table":
        return _table(result, known)
    if fmt == "json":
        return json.dumps(report_data(result, known=known), indent=2, ensure_ascii=False, default=repr) + "\n"
    if fmt == "yaml":
        from tkplan.planner._yaml import dump_yaml

        return dump_yaml(json.loads(json.dumps(report_data(result, known=known), default=repr)))
    if fmt == "sarif":
        return json.dumps(_sarif(result, version), indent=2, ensure_ascii=False, default=repr) + "\n"
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(result: AuditResult, known: int) -> str:
    show_status = any(f.status != "unchecked" for f in result.findings)
    header = ["LOCATION", "KIND", "KEY", "VALUE", "SCOPE", "SUGGESTED KEY"] + (["STATUS"] if show_status else [])
    rows = []
    for f in result.findings:
        row = [f.location, f.kind, f.key, _short(value_text(f.value), _TABLE_VALUE_WIDTH), f.scope or "<module>",
               f.suggested_key]
        if show_status:
            status = f.status
            if f.status in ("duplicate", "drift"):
                status += f" ({f.profile_key} = {_short(value_text(f.profile_value), 24)} at {f.profile_origin})"
            row.append(status)
        rows.append(row)
    lines = aligned([header, *rows]) if rows else []
    for skipped in result.skipped:
        lines.append(f"skipped {skipped.path}: {skipped.reason}")
    for note in result.notes:
        lines.append(f"note: {note}")
    summary = f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''} in {result.files} files"
    if known:
        summary += f" ({known} more accepted by the baseline)"
    if result.skipped:
        summary += f", {len(result.skipped)} skipped"
    statuses = Counter(f.status for f in result.findings)
    if show_status:
        summary += " — " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _message(f: Finding) -> str:
    text = f"{f.key} = {value_text(f.value)} is hardcoded ({f.kind}); it belongs in the profiles as {f.suggested_key}"
    if f.status == "drift":
        text += f"; the profile says {value_text(f.profile_value)} at {f.profile_origin} ({f.profile_key})"
    elif f.status == "duplicate":
        text += f"; the profile holds the same value at {f.profile_origin} ({f.profile_key}): remove it from code"
    return text


def _uri(path: str) -> dict[str, str]:
    if path.startswith("/"):
        return {"uri": "file://" + path}
    return {"uri": path, "uriBaseId": "%SRCROOT%"}


def _sarif(result: AuditResult, version: str) -> dict[str, Any]:
    kinds = sorted(KINDS)
    index = {k: i for i, k in enumerate(kinds)}
    driver: dict[str, Any] = {
        "name": "tkplan-audit",
        "rules": [
            {
                "id": kind,
                "name": kind,
                "shortDescription": {"text": KINDS[kind]},
                "defaultConfiguration": {"level": "warning"},
            }
            for kind in kinds
        ],
    }
    if version:
        driver["version"] = version
    results = []
    for f in result.findings:
        results.append(
            {
                "ruleId": f.kind,
                "ruleIndex": index[f.kind],
                "level": "error" if f.status == "drift" else "warning",
                "message": {"text": _message(f)},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": _uri(f.path),
                            "region": {"startLine": f.line, "startColumn": f.col},
                        }
                    }
                ],
                "partialFingerprints": {"tkplanAudit/v1": fingerprint(f)},
                "properties": {
                    "key": f.key,
                    "value": f.to_dict()["value"],
                    "scope": f.scope,
                    "suggestedKey": f.suggested_key,
                    "status": f.status,
                },
            }
        )
    notifications = [
        {"level": "note", "message": {"text": f"skipped: {s.reason}"},
         "locations": [{"physicalLocation": {"artifactLocation": _uri(s.path)}}]}
        for s in result.skipped
    ]
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                "results": results,
            }
        ],
    }
