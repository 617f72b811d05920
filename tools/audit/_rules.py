"""What one file's scan reports: the settings' kinds, noise filters and names, and the file's key prefix."""

from __future__ import annotations

import ast
from typing import Any

from ._config import AuditSettings
from ._findings import ENV_KINDS
from ._keys import module_prefix
from ._literal import literal_value
from ._tables import (
    CONFIG_RECEIVERS,
    CONSTRUCTOR_SUFFIX,
    CONSTRUCTORS,
    FILE_NAME,
    LOG_ENV,
    LOG_KEYS,
    LOG_LEVELS,
    STRUCTURAL_KWARGS,
    STRUCTURAL_MODES,
)
from ._vocab import Vocabulary

__all__ = ["Rules"]

_CONSTRUCTOR_ANSWERS: dict[frozenset[str], dict[str, bool]] = {}
"""Per set of constructor names, the answers of `Rules.is_constructor` so far (shared by the files of a scan)."""
_NAMED_KINDS = frozenset({"setdefault", "get_default", "constant"})
"""Kinds whose trivial values (0, 1, -1; None for the first two) are kept when their key names a setting."""
_SWITCH_KINDS = frozenset({"signature_default", "argparse_default", "call_kwarg", "config_dict", "local"})
"""Kinds where True/False is an on/off switch of an API (exist_ok=True), not a tuned value."""
_FRACTION_KINDS = frozenset({"clamp", "threshold", "fallback", "local"})
"""Kinds where 0.0, 1.0 and -1.0 are bounds of a fraction or the start of an accumulator."""
_KEYED_KINDS = frozenset({"constructor_kwarg", "call_kwarg", "setdefault", "get_default", "config_dict"})
"""Kinds whose key is a keyword or dict key that may fix a name, type or layout (name=, dtype=)."""


class Rules:
    """What one file's scan reports: the settings' kinds, filters and names, and the file's key prefix."""

    def __init__(self, settings: AuditSettings, path: str) -> None:
        self.kinds = settings.kinds
        self.noise = settings.noise
        self.max_items = settings.max_literal_items
        self.constructors = CONSTRUCTORS | settings.constructors
        self.receivers = CONFIG_RECEIVERS | {r.lower() for r in settings.config_receivers}
        self.prefix = module_prefix(path, settings.family_aliases)
        self.vocabulary = Vocabulary.of(settings.vocabulary)
        self._is_ctor = _CONSTRUCTOR_ANSWERS.setdefault(self.constructors, {})

    def is_constructor(self, name: str) -> bool:
        known = self._is_ctor.get(name)
        if known is None:
            known = self._is_ctor[name] = name in self.constructors or bool(CONSTRUCTOR_SUFFIX.search(name))
        return known

    def is_setting(self, name: str | None) -> bool:
        """Whether ``name`` names a setting of the vocabulary (`Vocabulary.names_setting`)."""
        return bool(name) and self.vocabulary.names_setting(name)  # type: ignore[arg-type]

    def is_config_like(self, name: str | None) -> bool:
        if not name:
            return False
        lowered = name.lower()
        if lowered in self.receivers or lowered.endswith(("config", "cfg", "params")):
            return True
        return any(part in self.receivers for part in lowered.split("_"))

    def is_noise(self, kind: str, key: str, value: Any) -> bool:
        noise = self.noise
        if kind == "process_setting":
            return False  # whatever a process-wide setter is given is a setting, 0 and None included
        cls = value.__class__
        if kind == "config_file":  # every value of a config file is configured; only "nothing" is noise
            return (value is None and "none" in noise) or (
                (cls is str or cls is list or cls is dict) and not value and "empty" in noise
            )
        if value is None or (cls is int and -1 <= value <= 1):
            if kind in _NAMED_KINDS and (value is not None or kind != "constant") and self.is_setting(key):
                pass  # cfg.setdefault("subsample_freq", 1): the key says it is a setting
            elif value is None:
                return "none" in noise
            elif "trivial_numbers" in noise:
                return True
        if cls is float and value in (0.0, 1.0, -1.0) and kind in _FRACTION_KINDS and "trivial_numbers" in noise:
            return True
        if (cls is str or cls is tuple or cls is dict) and not value and "empty" in noise:
            return True
        if cls is str and "\n" in value and "text" in noise:
            return True
        if cls is bool and kind in _SWITCH_KINDS and "bool_defaults" in noise:
            return True
        if "logging" in noise and (
            key.lower() in LOG_KEYS
            or key.lower().startswith(("log_", "logging_"))
            or (kind in ENV_KINDS and LOG_ENV.search(key) is not None)
            or (cls is str and value.upper() in LOG_LEVELS)
        ):
            return True
        if "private" in noise and key.startswith("_") and kind in ("constant", "signature_default"):
            return True
        if "structural" not in noise:
            return False
        if kind == "constant":
            return cls is str and FILE_NAME.match(value) is not None
        return kind in _KEYED_KINDS and (key in STRUCTURAL_KWARGS or (cls is str and key in STRUCTURAL_MODES))

    def literal(self, node: ast.AST) -> Any:
        """The value of a literal expression, or `NOT`."""
        budget = [self.max_items]
        return literal_value(node, budget)
