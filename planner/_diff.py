"""What differs between two plans, key by key, with where each side's value came from.

A value that came through references is attributed to the keys along its chain that changed: a batch
size written ``${vars.batch_size}`` that differs names ``vars.batch_size`` and where each side set it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from tkplan.planner._convert import converter
from tkplan.planner._plan import Plan

__all__ = ["Difference", "diff_plans", "flatten"]

_MISSING = "<absent>"


@attrs.frozen
class Difference:
    """One key whose value differs: ``section`` is hardware, data, config, step <id>, schedule or steps."""

    section: str
    key: str
    old: Any
    new: Any
    old_origin: str = ""
    new_origin: str = ""


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted key, leaf)`` for nested mappings; lists are leaves."""
    if isinstance(data, Mapping) and data:
        for key in sorted(data):
            yield from flatten(data[key], f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, data


def _origin(plan: Plan, key: str, other: Plan) -> str:
    """Where ``key``'s value came from; for a reference, the keys along its chain whose values differ in ``other``."""
    chain = plan.provenance.get(key)
    if not chain:
        return ""
    setting = chain[-1]
    text = f"{setting['source']} {_where(setting)}".strip()
    if not setting.get("via"):
        return text
    theirs = other.provenance.get(key)
    other_hops = {hop["key"]: hop for hop in theirs[-1].get("via", ())} if theirs else {}
    changed = [hop for hop in setting["via"] if other_hops.get(hop["key"]) != hop] or list(setting["via"][-1:])
    through = "; ".join(f"{hop['key']} = {json.dumps(hop['written'])} ({hop['where'] or hop['source']})"
                        for hop in changed)
    return f"{text} {json.dumps(setting['written'])}, through {through}"


def _where(setting: Mapping[str, Any]) -> str:
    if setting.get("file") is None:
        return ""
    return f"({setting['file']}:{setting['line']}:{setting['col']})" if setting.get("line") else f"({setting['file']})"


def _rule(step: Any, key: str) -> str:
    """The planner rule behind a step's value, when it derived it."""
    name = key.rsplit(".", 1)[-1]
    found = [d for d in step.derivations if d.key == name]
    return f"{found[-1].rule}: {found[-1].why}" if found else ""


def _compare(section: str, old: Any, new: Any) -> Iterator[Difference]:
    a, b = dict(flatten(old)), dict(flatten(new))
    for key in sorted(set(a) | set(b)):
        if a.get(key, _MISSING) != b.get(key, _MISSING):
            yield Difference(section, key, a.get(key, _MISSING), b.get(key, _MISSING))


def diff_plans(old: Plan, new: Plan) -> list[Difference]:
    """Every difference between ``old`` and ``new``: hardware, data, config (with provenance), steps, schedule.

    A step's ``data`` and ``digest`` are left out: they follow from the differences shown.
    """
    diffs: list[Difference] = list(_compare("hardware", converter.unstructure(old.hardware),
                                            converter.unstructure(new.hardware)))
    diffs += _compare("data", converter.unstructure(old.data), converter.unstructure(new.data))
    for d in _compare("config", converter.unstructure(old.config), converter.unstructure(new.config)):
        diffs.append(attrs.evolve(d, old_origin=_origin(old, d.key, new), new_origin=_origin(new, d.key, old)))
    old_steps = {s.id: s for s in old.steps}
    new_steps = {s.id: s for s in new.steps}
    for step_id in sorted(set(old_steps) - set(new_steps)):
        diffs.append(Difference("steps", step_id, "present", _MISSING))
    for step_id in sorted(set(new_steps) - set(old_steps)):
        diffs.append(Difference("steps", step_id, _MISSING, "present"))
    for step_id in sorted(set(old_steps) & set(new_steps)):
        a = converter.unstructure(old_steps[step_id])
        b = converter.unstructure(new_steps[step_id])
        for derived in ("derivations", "data", "digest"):
            a.pop(derived), b.pop(derived)
        for d in _compare(f"step {step_id}", a, b):
            diffs.append(attrs.evolve(d, old_origin=_rule(old_steps[step_id], d.key),
                                      new_origin=_rule(new_steps[step_id], d.key)))
    a, b = converter.unstructure(old.schedule), converter.unstructure(new.schedule)
    a.pop("derivations"), b.pop("derivations")
    diffs.extend(_compare("schedule", a, b))
    return diffs
