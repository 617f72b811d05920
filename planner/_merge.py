"""Merge layers and overrides into one configuration, keeping the provenance of every leaf.

Mappings merge deeply; lists and scalars replace; ``null`` is a value like any other. Every leaf keeps
the chain of settings that wrote it, lowest first, so the last entry is the one in force.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from tkplan.planner._sources import Layer

__all__ = ["Hop", "Setting", "changed_paths", "dotted", "forget", "last_where", "merge_layers", "same",
           "set_path"]


@attrs.frozen
class Hop:
    """One step of a reference's chain: the key read (or ``env:NAME``), its value as written there, and where.

    Attributes:
        key: the dotted key the reference read, or ``env:NAME``.
        written: the value as written at ``key`` (another reference, when the chain goes on).
        source: the layer, ``env:NAME`` or ``cli:arg N`` that set ``key``.
        where: ``file:line:col`` of that setting, ``env:NAME``, or ``default`` for a variable's default.
    """

    key: str
    written: Any
    source: str
    where: str


@attrs.frozen
class Setting:
    """One write of a value to a key: what was written and where it came from.

    Attributes:
        value: the value in force (a reference's resolved value).
        source: the layer name, ``env:NAME`` or ``cli:arg N``.
        file: display path of the layer's file, for layers.
        line: 1-based line in ``file``.
        col: 1-based column in ``file``.
        written: the value as written, when it held references (``${run.name}-x``); else ``None``.
        via: the keys and variables the references resolved through, in order.
    """

    value: Any
    source: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    written: Any = None
    via: tuple[Hop, ...] = ()

    @property
    def where(self) -> str:
        """``file:line:col`` for layers, the source itself for env and CLI."""
        if self.file is None:
            return self.source
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


Provenance = dict[str, list[Setting]]


def last_where(provenance: Provenance, key: str) -> str:
    """Where ``key`` was last set (``file:line:col``, ``env:NAME``, ``cli:arg N``), or ``""`` when no layer set it."""
    chain = provenance.get(key)
    return chain[-1].where if chain else ""


def dotted(path: Iterable[str | int]) -> str:
    """Join a key path with dots: ``("families", "lightgbm", "num_leaves")`` → ``families.lightgbm.num_leaves``."""
    return ".".join(str(p) for p in path)


def merge_layers(layers: Iterable[Layer]) -> tuple[dict[str, Any], Provenance]:
    """Merge ``layers`` (lowest first) into a configuration and its provenance."""
    config: dict[str, Any] = {}
    provenance: Provenance = {}
    for layer in layers:
        doc = layer.document

        def setting(path: tuple[str, ...], value: Any, layer: Layer = layer, doc: Any = doc) -> Setting:
            line, col = doc.positions.get(path, (None, None))
            return Setting(value, layer.name, layer.file, line, col)

        _merge_into(config, doc.data, (), setting, provenance)
    return config, provenance


def set_path(config: dict[str, Any], path: tuple[str, ...], value: Any, setting: Setting,
             provenance: Provenance) -> None:
    """Write ``value`` at ``path`` (deep-merging a mapping), recording ``setting`` as its origin."""
    parent = config
    for key in path[:-1]:
        if not isinstance(parent.get(key), dict):
            parent[key] = {}
        parent = parent[key]
    _merge_into(parent, {path[-1]: value}, path[:-1], lambda p, v: attrs.evolve(setting, value=v), provenance)


def _merge_into(target: dict[str, Any], data: Mapping[str, Any], path: tuple[str, ...], setting: Any,
                provenance: Provenance) -> None:
    for key, value in data.items():
        here = (*path, key)
        if isinstance(value, dict) and value:
            if not isinstance(target.get(key), dict):
                provenance.pop(dotted(here), None)
                target[key] = {}
            _merge_into(target[key], value, here, setting, provenance)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            continue  # an empty mapping merged into a mapping changes nothing
        else:
            if isinstance(target.get(key), dict):
                forget(provenance, here)
            target[key] = copy.deepcopy(value)
            provenance.setdefault(dotted(here), []).append(setting(here, copy.deepcopy(value)))


def forget(provenance: Provenance, path: tuple[str, ...]) -> None:
    """Drop the provenance under ``path``: a later layer replaced (or an override removed) that whole subtree."""
    prefix = dotted(path) + "."
    for key in [k for k in provenance if k.startswith(prefix)]:
        del provenance[key]


def changed_paths(old: Any, new: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The key paths where ``new`` differs from ``old``, each as high as the difference goes.

    Mappings with the same keys and lists of the same length are compared item by item; a mapping whose keys
    differ, a list whose length differs, or a value of another type or text is itself a changed path.
    """
    if type(old) is dict and type(new) is dict and old.keys() == new.keys():
        for key, value in new.items():
            if old[key] is not value:  # a scalar both hold (most of them) is one object
                yield from changed_paths(old[key], value, (*path, key))
    elif type(old) is list and type(new) is list and len(old) == len(new):
        for i, (before, after) in enumerate(zip(old, new, strict=True)):
            if before is not after:
                yield from changed_paths(before, after, (*path, i))
    elif old is not new and not same(old, new):
        yield path


def same(a: Any, b: Any) -> bool:
    """Whether two configuration values are the same value of the same type, as a plan's JSON writes them.

    Unlike ``==``: ``1``, ``1.0`` and ``true`` differ, and so do ``0.0`` and ``-0.0``.
    """
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return repr(a) == repr(b)
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
