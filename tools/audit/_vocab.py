"""The vocabulary of setting names: which names in code name a setting, taken from profiles and schemas.

A literal whose value looks like noise (``1``, ``-1``, ``None``) or that sits in a place where most
literals are not settings (any call's keyword, a dict entry, a local assignment) is reported only when
its name names a setting. The names come from tkplan's own configuration, not from guesswork: every
leaf key of the shipped profiles, every non-section property of the config and family schemas, plus
the leaf keys of the user's ``--profiles`` and ``AuditSettings.vocabulary``.

A code name names a setting when, made a config key (`normalise`: ``DEFAULT_EPOCHS`` → ``epochs``), it
is one of those names (or its singular is: ``seed`` for ``seeds``), or it has several words and its
last word (singular) is the last word of one of them and not a word that names a thing rather than a
quantity (`GENERIC`: ``model_file``, ``run_name``): ``subsample_freq`` (as ``bagging_freq``),
``max_leaves`` (``num_leaves``), ``blas_threads`` (``threads``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from ._keys import normalise

__all__ = ["GENERIC", "Vocabulary", "profile_leaf_names", "shipped_names", "stem"]

GENERIC = frozenset(  # tkplan: ignore[constant]
    {
        "name", "names", "value", "values", "key", "keys", "id", "ids", "file", "files", "path", "paths",
        "dir", "directory", "type", "kind", "mode", "ok", "index", "line", "col", "column", "columns", "source",
        "format",
        "text", "label", "message", "title", "prefix", "suffix", "version", "reason", "rule", "why",
        "provenance", "entrypoint", "extends", "family", "families", "target", "targets", "symbol", "symbols",
        "features", "config", "params", "data", "env", "inputs", "steps", "task", "tasks", "cell", "platform",
    }
)
"""Words that name a thing (a file, a label, a record) rather than a setting: never a setting name, alone
or as the last word."""

_SCHEMAS = ("config.schema.json", "family_runtime.json", "user_family.json")
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


def stem(word: str) -> str:
    """A word made singular the simple way: ``rounds`` → ``round``, ``leaves`` → ``leave``; ``loss`` stays."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


@attrs.frozen
class Vocabulary:
    """Setting names, and the last words they end with.

    Attributes:
        names: setting names as config keys (``num_leaves``), and the singular of each (``seed``),
            less `GENERIC` words (``name``).
        heads: the singular last words of those names, less `GENERIC` ones and any shorter than two
            letters (``leave``).
    """

    names: frozenset[str] = frozenset()
    heads: frozenset[str] = frozenset()
    known: dict[str, bool] = attrs.field(factory=dict, eq=False, hash=False, repr=False)
    """Answers of `names_setting` so far: a scan asks about the same names in file after file."""

    @classmethod
    @functools.lru_cache(maxsize=8)  # a few vocabularies per process; every scanned file asks
    def of(cls, names: frozenset[str]) -> Vocabulary:
        """The vocabulary of ``names`` (config keys; others are ignored)."""
        kept = {n for n in names if _IDENT.match(n) and n not in GENERIC}
        heads = {stem(n.rsplit("_", 1)[-1]) for n in kept} - {stem(g) for g in GENERIC}
        return cls(frozenset(kept | {stem(n) for n in kept}), frozenset(h for h in heads if h.isalpha() and len(h) > 1))

    def names_setting(self, name: str) -> bool:
        """Whether the code name ``name`` names a setting (see the module docstring)."""
        known = self.known.get(name)
        if known is None:
            known = self.known[name] = self._names_setting(name)
        return known

    def _names_setting(self, name: str) -> bool:
        key = normalise(name)
        if key in self.names or stem(key) in self.names:
            return True
        head, sep, _ = key.rpartition("_")
        if not sep or not head:
            return False
        last = key[len(head) + 1 :]
        return last not in GENERIC and stem(last) in self.heads


def _leaves(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict):
                yield from _leaves(value)
            elif isinstance(key, str):
                yield key


def profile_leaf_names(keys: Iterable[str]) -> frozenset[str]:
    """The last parts of dotted profile keys (``families.lightgbm.num_leaves`` → ``num_leaves``)."""
    return frozenset(k.rsplit(".", 1)[-1] for k in keys)


def _schema_properties(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if not (isinstance(sub, dict) and (sub.get("type") == "object" or "properties" in sub)):
                yield name
        for value in schema.values():
            yield from _schema_properties(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _schema_properties(item)


@functools.cache
def shipped_names() -> frozenset[str]:
    """The leaf keys of the shipped profiles and the setting properties of the shipped schemas."""
    from tkplan.planner._schemas import schema_dir
    from tkplan.planner._sources import shipped_dir
    from tkplan.planner._yaml import load_path

    names: set[str] = set()
    for path in sorted(shipped_dir().rglob("*.yaml")):
        names.update(_leaves(load_path(path).data))
    schemas = schema_dir()
    for path in [*(schemas / n for n in _SCHEMAS), *sorted((schemas / "families").glob("*.json"))]:
        with open(path, encoding="utf-8") as fh:
            names.update(_schema_properties(json.load(fh)))
    return frozenset(names)
