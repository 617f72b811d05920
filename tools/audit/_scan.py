"""Find the hardcoded configuration values of one Python file, in one `ast.NodeVisitor` pass.

What is reported, by kind (see `KINDS`): ``setdefault``, ``get_default``, ``env_default``, ``env_write``,
``signature_default``, ``constructor_kwarg``, ``call_kwarg``, ``positional_arg``, ``config_dict``,
``fallback``, ``local``, ``process_setting``, ``constant``, ``argparse_default``, ``threshold`` and
``clamp``. Only literal values count (numbers, strings, booleans, None, and small tuples, lists, sets and
dicts of them, with constant arithmetic such as ``4 * 2**20`` folded); a value computed at run time is
not a hardcoded default. Noise filters (`NOISE_FILTERS`) drop the usual non-settings, and where most
literals are not settings a name must name one (`Vocabulary`). A line that ends
with ``# tkplan: ignore[kind, ...]`` (or a bare ``# tkplan: ignore``) reports nothing of those kinds.

The jobs live in their own modules: name tables (`_tables`), noise rules (`_rules`), literal folding
(`_literal`), syntax-tree names (`_astnames`), setting names (`_vocab`), the visitor (`_visitor`) and
source decoding (`_source`).
"""

from __future__ import annotations

import ast

import attrs

from ._config import AuditSettings
from ._findings import Finding
from ._rules import Rules
from ._source import LINE_BREAK, decode_source, parse_ignores, recursion_limit
from ._visitor import Visitor

__all__ = ["FileScan", "scan_python"]

_DEEP_RECURSION_LIMIT = 20_000  # for the second try at a tree too deep for the default limit


@attrs.frozen
class FileScan:
    """The result of scanning one file: its findings, or why it was skipped, and any notes."""

    path: str
    findings: tuple[Finding, ...] = ()
    skipped: str = ""
    notes: tuple[str, ...] = ()


def scan_python(path: str, data: bytes, settings: AuditSettings) -> FileScan:
    """Scan the Python source ``data`` of the file shown as ``path``.

    A file that cannot be decoded or parsed gives a `FileScan` with ``skipped`` set; this function
    raises nothing for bad input.
    """
    text, reason = decode_source(data)
    if reason:
        return FileScan(path, skipped=reason)
    try:
        tree = ast.parse(data, filename=path)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return FileScan(path, skipped=f"syntax error{where}: {exc.msg}")
    except (ValueError, MemoryError, RecursionError) as exc:
        return FileScan(path, skipped=f"cannot parse: {exc.__class__.__name__}: {exc}")
    rules = Rules(settings, path)
    visitor = Visitor(rules)
    try:
        visitor.visit(tree)
    except RecursionError:
        # The parser accepts deeper trees than the default limit lets a recursive visitor walk
        # (long `a + b + ...` chains); Python-to-Python calls use no C stack, so a higher limit is safe.
        visitor = Visitor(rules)
        try:
            with recursion_limit(_DEEP_RECURSION_LIMIT):
                visitor.visit(tree)
        except RecursionError:
            return FileScan(path, skipped="too deeply nested to scan")
    found = visitor.found
    if not found:
        return FileScan(path)
    lines: list[str] | None = None
    ignores: dict[int, frozenset[str] | None] = {}
    notes: list[str] = []
    if "tkplan:" in text:
        lines = LINE_BREAK.split(text)
        ignores, notes = parse_ignores((n, lines[n - 1]) for n in sorted({f[0] for f in found}) if n <= len(lines))
    ascii_only = data.isascii()
    findings = []
    for line, offset, kind, key, value, scope, suggested in found:
        silenced = ignores.get(line, ())
        if silenced is None or kind in silenced:
            continue
        if ascii_only:
            col = offset + 1
        else:
            if lines is None:
                lines = LINE_BREAK.split(text)
            source_line = lines[line - 1] if line <= len(lines) else ""
            col = len(source_line.encode("utf-8")[:offset].decode("utf-8", "replace")) + 1
        findings.append(Finding(path, line, col, kind, key, value, scope, suggested))
    return FileScan(path, tuple(findings), notes=tuple(f"{path}: {n}" for n in notes))
