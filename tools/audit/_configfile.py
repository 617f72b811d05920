"""Find the settings of a YAML, JSON or TOML configuration file that lives in the code tree.

A config file next to the code is a second home for settings that belong in the profiles: each leaf
(a scalar, or a list as a whole) is a ``config_file`` finding at the line of its key, compared with
the profiles like any other. YAML and JSON are read with tkplan's one safe YAML loader (positions,
bounded aliases, no tags); TOML with `tomllib`, lines found by its ``[table]`` and ``key =`` lines.
A document whose top level is not a mapping (a JSON list of records) or that declares ``$schema`` (a
JSON Schema) is data, not configuration: no findings; one with more than ``max_config_leaves`` values
is data too, and listed as skipped. A file that does not parse is skipped with why.

The suggested key is the file's dotted key path, under the file's stem unless its first part is a
section of tkplan's configuration (``run.threads`` stays ``run.threads``; ``model.num_leaves`` in
``train.yaml`` becomes ``train.model.num_leaves``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from tkplan.errors import ConfigError

from ._config import AuditSettings
from ._findings import Finding
from ._keys import module_prefix
from ._rules import Rules
from ._scan import FileScan
from ._source import parse_ignores

__all__ = ["SECTIONS", "scan_config"]

SECTIONS = frozenset(  # tkplan: ignore[constant]
    {"run", "campaign", "data", "training", "threading", "limits", "gpu", "isolation", "determinism", "logging",
     "env", "families", "report"}
)
"""The top-level sections of tkplan's configuration: a config file's key under one keeps its path."""

_TOML_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=""")

_Path = tuple[str, ...]


def _leaves(data: dict[str, Any], path: _Path = ()) -> Iterator[tuple[_Path, Any]]:
    for key, value in data.items():
        here = (*path, str(key))
        if isinstance(value, dict) and value:
            yield from _leaves(value, here)
        else:
            yield here, value


def _load_yaml(text: str, source: str) -> tuple[Any, dict[_Path, tuple[int, int]]]:
    from tkplan.planner._yaml import load_document

    document = load_document(text, source, mapping=False)
    return document.data, {tuple(str(p) for p in path): where for path, where in document.positions.items()}


def _toml_key(raw: str) -> _Path:
    return tuple(part.strip().strip("\"'") for part in raw.split("."))


def _load_toml(text: str) -> tuple[Any, dict[_Path, tuple[int, int]]]:
    import tomllib

    data = tomllib.loads(text)
    lines: dict[_Path, tuple[int, int]] = {}
    table: _Path = ()
    for number, line in enumerate(text.splitlines(), 1):
        match = _TOML_TABLE.match(line)
        if match:
            table = _toml_key(match.group(1))
            lines.setdefault(table, (number, match.start(1) + 1))
            continue
        match = _TOML_KEY.match(line)
        if match:
            lines.setdefault((*table, *_toml_key(match.group(1))), (number, match.start(1) + 1))
    return data, lines


def _is_config(document: Any) -> bool:
    return isinstance(document, dict) and "$schema" not in document


def _count(data: Any, limit: int) -> int:
    """The number of leaves of ``data``, counted up to just past ``limit``."""
    count = 0
    stack = [data]
    while stack and count <= limit:
        node = stack.pop()
        if isinstance(node, dict) and node:
            stack.extend(node.values())
        else:
            count += 1
    return count


def _not_config(path: str, document: Any, limit: int) -> FileScan:
    """No findings for data (a list, a JSON Schema); a skip, with why, for a mapping too large to be settings."""
    if _is_config(document):
        return FileScan(path, skipped=f"more than {limit} values: data, not configuration; see max-config-leaves")
    return FileScan(path)


def _where(lines: dict[_Path, tuple[int, int]], path: _Path) -> tuple[int, int]:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, (1, 1))


def scan_config(path: str, data: bytes, settings: AuditSettings) -> FileScan:
    """Scan the configuration file ``data`` shown as ``path``; raises nothing for bad input."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return FileScan(path, skipped=f"not valid UTF-8 text (byte {exc.start})")
    limit = settings.max_config_leaves
    try:
        if path.endswith(".json"):  # the C JSON reader sorts data from config before the YAML reader's positions
            document = json.loads(text)
            if not _is_config(document) or _count(document, limit) > limit:
                return _not_config(path, document, limit)
        if path.endswith(".toml"):
            document, lines = _load_toml(text)
        else:
            document, lines = _load_yaml(text, path)
    except ConfigError as exc:
        return FileScan(path, skipped=f"cannot read as configuration: {exc.problems[0].message}")
    except ValueError as exc:  # json.JSONDecodeError, tomllib.TOMLDecodeError
        return FileScan(path, skipped=f"cannot read as configuration: {exc}")
    except RecursionError:
        return FileScan(path, skipped="too deeply nested to read as configuration")
    if not _is_config(document) or _count(document, limit) > limit:
        return _not_config(path, document, limit)
    rules = Rules(settings, path)
    if "config_file" not in rules.kinds:
        return FileScan(path)
    prefix = module_prefix(PurePosixPath(path).name, settings.family_aliases)
    found = []
    for key_path, value in _leaves(document):
        if not rules.is_noise("config_file", key_path[-1], value):
            found.append((*_where(lines, key_path), ".".join(key_path), value))
    text_lines = text.splitlines()
    lines_found = sorted({f[0] for f in found if f[0] <= len(text_lines)})
    ignores, notes = parse_ignores((n, text_lines[n - 1]) for n in lines_found)
    findings = []
    for line, col, key, value in found:
        silenced = ignores.get(line, ())
        if silenced is None or "config_file" in silenced:
            continue
        suggested = key if key.split(".", 1)[0] in SECTIONS else f"{prefix}.{key}"
        findings.append(Finding(path, line, col, "config_file", key, value, "", suggested))
    return FileScan(path, tuple(findings), notes=tuple(f"{path}: {n}" for n in notes))
