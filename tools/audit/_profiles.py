"""Compare findings with profiles: is each value only in code, duplicated in a profile, or drifted?

Profiles are YAML files (or directories of them, read recursively in name order), loaded with
tkplan's one safe YAML loader (the planner's: bounded size, nesting and aliases) and flattened to
dotted keys (``families.lightgbm.num_leaves``); lists are leaves. A later file overrides an earlier
one, as layers do. ``extends`` is ignored.

A finding is matched with a profile key by its suggested key, in this order:

1. the same key;
2. for a key under ``families.<family>``: the one key of that family with the same last part
   (``families.lightgbm.lgbm_regressor.num_leaves`` → ``families.lightgbm.num_leaves``), else the one key
   of that family ending with ``_<last part>`` (``n_estimators`` → ``rf_n_estimators``);
3. for any other key not under ``env``: the one key outside ``families`` with the same last part
   (``train.timeout_s`` → ``limits.timeout_s``); a family's settings match only that family's code.

"The one" means a unique candidate: an ambiguous last part matches nothing. Values compare as
numbers where one side is a number and the other a numeric string (``"4"`` = ``4``: env values are
strings), and lists as tuples; a legacy variable's text is first read as tkplan reads it
(``CUDA_VISIBLE_DEVICES="0"`` is ``gpu.devices: [0]``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from tkplan.errors import AuditError, ConfigError

from ._findings import Finding, freeze_value
from ._keys import config_value

__all__ = ["ProfileEntry", "ProfileIndex", "load_profiles", "mark_findings", "same_value"]



@attrs.frozen
class ProfileEntry:
    """One leaf of the profiles: its dotted key, its value and where it was set (``file:line``)."""

    key: str
    value: Any = attrs.field(converter=freeze_value, hash=False)
    origin: str = ""


@attrs.frozen
class ProfileIndex:
    """The flattened leaves of some profiles, and lookups by last key part."""

    entries: Mapping[str, ProfileEntry] = attrs.field(factory=dict, hash=False)
    by_leaf: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, hash=False)

    @classmethod
    def from_entries(cls, entries: Iterable[ProfileEntry]) -> ProfileIndex:
        """Index ``entries``; a later entry for a key replaces an earlier one."""
        table = {e.key: e for e in entries}
        leaves: dict[str, list[str]] = {}
        for key in sorted(table):
            leaves.setdefault(key.rsplit(".", 1)[-1], []).append(key)
        return cls(table, {leaf: tuple(keys) for leaf, keys in leaves.items()})

    def lookup(self, suggested_key: str) -> ProfileEntry | None:
        """The profile entry a suggested key matches, by the rules of this module, or ``None``."""
        if suggested_key in self.entries:
            return self.entries[suggested_key]
        parts = suggested_key.split(".")
        leaf = parts[-1]
        if parts[0] == "env":
            return None
        if parts[0] == "families" and len(parts) >= 3:
            section = f"families.{parts[1]}."
            same = [k for k in self.by_leaf.get(leaf, ()) if k.startswith(section)]
            if len(same) == 1:
                return self.entries[same[0]]
            if not same:
                ending = f"_{leaf}"
                similar = [k for k in self.entries if k.startswith(section) and k.endswith(ending)]
                if len(similar) == 1:
                    return self.entries[similar[0]]
            return None
        anywhere = [k for k in self.by_leaf.get(leaf, ()) if not k.startswith("families.")]
        if len(anywhere) == 1:
            return self.entries[anywhere[0]]
        return None


def _files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise AuditError(f"{path}: no such profile file or directory")
    return files


def _leaves(data: Any, path: tuple[str, ...] = ()) -> Any:
    for key, value in data.items():
        if not path and key == "extends":
            continue
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def load_profiles(paths: Iterable[str | os.PathLike[str]]) -> ProfileIndex:
    """Load the YAML profiles at ``paths`` (files or directories) into a flat index.

    Each file is read with tkplan's one safe YAML loader (`tkplan.planner._yaml.load_path`): no tags,
    bounded size, nesting and alias expansion, string keys only.

    Raises:
        AuditError: a path is missing, or a file is unreadable, too large, not YAML, not a mapping,
            too deeply nested, expands too many aliases or uses a tag the safe loader refuses.
    """
    from tkplan.planner._yaml import load_path

    entries: list[ProfileEntry] = []
    for path in _files(paths):
        source = path.as_posix()
        try:
            document = load_path(path, source)
        except ConfigError as exc:
            raise AuditError(f"{source}: not a valid profile: {exc}") from None
        for key_path, value in _leaves(document.data):
            line = document.positions.get(key_path, (1, 1))[0]
            entries.append(ProfileEntry(".".join(key_path), value, f"{source}:{line}"))
    return ProfileIndex.from_entries(entries)


def same_value(code: Any, profile: Any) -> bool:
    """Whether a code literal and a profile value are the same setting (``"4"`` = ``4``, lists = tuples)."""
    code, profile = freeze_value(code), freeze_value(profile)
    if isinstance(code, bool) or isinstance(profile, bool):
        if isinstance(code, str) and isinstance(profile, bool):
            return code.strip().lower() in (("true", "1", "yes", "on") if profile else ("false", "0", "no", "off"))
        if isinstance(profile, str) and isinstance(code, bool):
            return same_value(profile, code)
        return type(code) is type(profile) and code == profile
    numbers = (int, float)
    if isinstance(code, numbers) and isinstance(profile, numbers):
        return float(code) == float(profile)
    if isinstance(code, str) and isinstance(profile, numbers):
        return _as_number(code) == float(profile)
    if isinstance(profile, str) and isinstance(code, numbers):
        return _as_number(profile) == float(code)
    if isinstance(code, tuple) and isinstance(profile, tuple):
        return len(code) == len(profile) and all(same_value(a, b) for a, b in zip(code, profile, strict=True))
    if isinstance(code, dict) and isinstance(profile, dict):
        return code.keys() == profile.keys() and all(same_value(code[k], profile[k]) for k in code)
    return bool(code == profile)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def mark_findings(findings: Iterable[Finding], index: ProfileIndex) -> tuple[Finding, ...]:
    """Return ``findings`` with ``status`` (and the matched profile key, value, origin) set.

    ``not_centralised``: no profile key matches; ``duplicate``: one does, with the same value;
    ``drift``: one does, with a different value.
    """
    marked = []
    for finding in findings:
        entry = index.lookup(finding.suggested_key)
        if entry is None:
            marked.append(attrs.evolve(finding, status="not_centralised"))
            continue
        value = config_value(finding.kind, finding.key, finding.value)
        status = "duplicate" if same_value(value, entry.value) else "drift"
        marked.append(
            attrs.evolve(
                finding, status=status, profile_key=entry.key, profile_value=entry.value, profile_origin=entry.origin
            )
        )
    return tuple(marked)
