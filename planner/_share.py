"""Freeze the configuration and provenance of plans so that plans share what they have in common.

A sweep's points differ in a few keys; their plans hold the same layers' settings and mostly the same
configuration. `PlanParts` makes each plan's frozen ``config`` and ``provenance`` reuse the frozen parts that
are the same as the others': every provenance setting is unstructured and frozen once (the settings the points
share are the same objects), and a configuration reuses every part of a reference configuration's frozen form
that it holds unchanged. A plan's content — and so its JSON and its hash — is what freezing it from scratch
gives; only its memory and the time to make it shrink.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any

from tkplan.planner._convert import JsonMap, converter, freeze, thaw
from tkplan.planner._merge import Setting, same
from tkplan.planner._plan import canonical_json

__all__ = ["PlanParts", "canonical_text"]


class PlanParts:
    """Freezes the configuration and provenance of the plans of one sweep (or of one plan), sharing their parts.

    Args:
        reference: a configuration most plans hold most of (a sweep's configuration before any point's
            values); ``None`` shares no configuration, only provenance settings.
    """

    def __init__(self, reference: Mapping[str, Any] | None = None) -> None:
        self._reference = reference
        self._frozen = freeze(reference) if reference is not None else None
        self._settings: dict[int, tuple[Setting, JsonMap]] = {}  # id → (the setting, kept alive; its frozen form)
        self._chains: dict[tuple[int, ...], tuple[Sequence[Setting], tuple[JsonMap, ...]]] = {}  # by the settings' ids
        self._texts: dict[int, tuple[Any, str]] = {}

    def config(self, config: Mapping[str, Any]) -> JsonMap:
        """``freeze(config)``, made of the reference's frozen parts wherever ``config`` holds them unchanged."""
        shared: JsonMap = freeze(config) if self._reference is None else _share(config, self._reference, self._frozen)
        return shared

    def provenance(self, provenance: Mapping[str, Sequence[Setting]]) -> JsonMap:
        """The provenance as a plan holds it: each key's chain of unstructured settings, frozen."""
        return types.MappingProxyType({key: self._chain(key, chain) for key, chain in provenance.items()})

    def text(self, value: Any) -> str:
        """``canonical_json(value)`` of a frozen part of a plan, reusing the text of what another plan shares."""
        return canonical_text(value, self._texts, keep=False)

    def _chain(self, key: str, chain: Sequence[Setting]) -> tuple[JsonMap, ...]:
        ids = tuple(map(id, chain))
        known = self._chains.get(ids)
        if known is None:  # the settings are kept alive in the value, so their ids stay theirs
            known = self._chains[ids] = (tuple(chain), tuple(self._setting(s) for s in chain))
        return known[1]

    def _setting(self, setting: Setting) -> JsonMap:
        known = self._settings.get(id(setting))
        if known is None:
            known = self._settings[id(setting)] = (setting, freeze(thaw(converter.unstructure(setting))))
        return known[1]


def _share(value: Any, reference: Any, frozen: Any) -> Any:
    """``freeze(value)``, reusing ``frozen`` (``freeze(reference)``) or its parts where ``value`` is the same."""
    if type(value) is dict and type(reference) is dict:
        parts = {key: (frozen[key] if item is reference[key] else _share(item, reference[key], frozen[key]))
                 if key in reference else freeze(item) for key, item in value.items()}
        if tuple(parts) == tuple(frozen) and all(parts[key] is frozen[key] for key in parts):
            return frozen
        return types.MappingProxyType(parts)
    return frozen if same(value, reference) else freeze(value)


def canonical_text(value: Any, texts: dict[int, tuple[Any, str]], keep: bool = True) -> str:
    """``canonical_json(value)``, reusing the texts of frozen parts seen before.

    The text of each read-only mapping or tuple is kept in ``texts`` by identity, with the object (so that no
    other object takes its identity while it is kept), and reused wherever that object appears again; the
    outermost ``value`` is not kept unless ``keep`` (a plan's own mapping, which no other plan holds). Key texts
    are kept by the key's identity too.
    """
    kind = type(value)
    if kind is not types.MappingProxyType and kind is not tuple:
        return canonical_json(value)
    known = texts.get(id(value))
    if known is not None:
        return known[1]
    if kind is tuple:
        text = "[" + ",".join(canonical_text(item, texts) for item in value) + "]"
    else:
        parts = []
        for key, item in sorted(value.items()):
            key_text = texts.get(id(key)) or texts.setdefault(id(key), (key, canonical_json(key)))
            item_text = texts.get(id(item))
            parts.append(f"{key_text[1]}:{item_text[1] if item_text is not None else canonical_text(item, texts)}")
        text = "{" + ",".join(parts) + "}"
    if keep:
        texts[id(value)] = (value, text)
    return text
