"""Write findings as a draft YAML profile, each value commented with the file:line it came from.

Findings go under their suggested keys, in key order, where the configuration declares that key and takes
that value; any other goes under ``project.<suggested key>``, the section the schema keeps for a code
base's own settings, so that ``tkplan validate draft.yaml`` accepts the draft as written. Findings a profile
already holds (status ``duplicate`` or ``drift``) are left out: the draft holds what is still only in code. When several
findings suggest the same key, the first (by location) gives the value and the others are listed in
its comment, with their value where it differs. A finding whose key clashes with another's (a value
where the other needs a mapping) is listed in the header instead.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from ._findings import Finding, freeze_value, value_text
from ._keys import config_value

__all__ = ["render_profile"]

_MAX_COMMENT_COLUMN = 60


def _yaml_value(value: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, tuple):
        seq = CommentedSeq(_yaml_value(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        mapping = CommentedMap((k, _yaml_value(v)) for k, v in value.items())
        mapping.fa.set_flow_style()
        return mapping
    return value


def _origin(f: Finding) -> str:
    where = f"{f.path}:{f.line}"
    scope = f" in {f.scope}" if f.scope else ""
    return f"{where} {f.kind}{scope}"


def _placed(path: tuple[str, ...], value: Any) -> tuple[str, ...]:
    """``path`` when the configuration declares it and takes ``value`` there, else under ``project``."""
    from tkplan.planner._schemas import accepts

    if path[0] == "project" or accepts(path, json.loads(value_text(value))):
        return path
    return ("project", *path)


def render_profile(findings: Iterable[Finding], *, header: str = "") -> str:
    """Return a YAML profile holding the values of ``findings`` under their suggested keys.

    Args:
        findings: audit findings; ``duplicate`` and ``drift`` ones are left out.
        header: extra first comment lines (e.g. the command that made the draft).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    root = CommentedMap()
    leaves: dict[tuple[str, ...], tuple[CommentedMap, str, Any, list[str]]] = {}
    branches: set[tuple[str, ...]] = set()
    clashes: list[str] = []
    chosen = [f for f in findings if f.status not in ("duplicate", "drift")]
    chosen.sort(key=lambda f: (f.suggested_key, f.path, f.line, f.col))
    places: dict[str, tuple[str, ...]] = {}  # the first finding of a key (by location) decides where it goes
    for f in chosen:
        if f.suggested_key not in places:
            places[f.suggested_key] = _placed(tuple(f.suggested_key.split(".")), config_value(f.kind, f.key, f.value))
        path = places[f.suggested_key]
        if path in branches or any(path[:i] in leaves for i in range(1, len(path))):
            clashes.append(f"{'.'.join(path)} = {value_text(f.value)} ({_origin(f)}): clashes with another key")
            continue
        if path in leaves:
            _, _, first, origins = leaves[path]
            same = value_text(first) == value_text(f.value)
            origins.append(f"{f.path}:{f.line}" + ("" if same else f" = {value_text(f.value)}"))
            continue
        node = root
        for i, part in enumerate(path[:-1], 1):
            branches.add(path[:i])
            node = node.setdefault(part, CommentedMap())
        value = config_value(f.kind, f.key, f.value)
        node[path[-1]] = _yaml_value(freeze_value(value))
        leaves[path] = (node, path[-1], value, [_origin(f)])
    widths = [2 * (len(path) - 1) + len(path[-1]) + 2 + len(value_text(v)) for path, (_, _, v, _) in leaves.items()]
    column = min(max(widths, default=0) + 2, _MAX_COMMENT_COLUMN)
    for node, leaf, _, origins in leaves.values():
        text = origins[0] + (f"; also {', '.join(origins[1:])}" if len(origins) > 1 else "")
        node.yaml_add_eol_comment(f"# {text}", leaf, column=column)
    lines = [
        "Draft profile written by `tkplan audit --emit-profile`: values hardcoded in code, under the keys",
        "the audit suggests. Review each before use; the comment says where the value came from.",
        "Settings tkplan does not know are under `project:` (your code base's own; steps get them in",
        "ctx.config['project']); move one to a tkplan key where it means the same.",
    ]
    lines += [line for line in header.splitlines() if line]
    for clash in clashes:
        lines.append(f"not placed: {clash}")
    root.yaml_set_start_comment("\n".join(lines))
    yaml = YAML()
    yaml.width = 120
    out = io.StringIO()
    if not root:
        return "".join(f"# {line}\n" for line in lines) + "{}\n"
    yaml.dump(root, out)
    return out.getvalue()
