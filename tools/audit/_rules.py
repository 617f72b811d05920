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
    LOG_ENV,
    LOG_KEYS,
    LOG_LEVELS,
    STRUCTURAL_KWARGS,
    STRUCTURAL_MODES,
)

__all__ = ["Rules"]


class Rules:
    """What one file's scan reports: the settings' kinds, filters and names, and the file's key prefix."""

    def __init__(self, settings: AuditSettings, path: str) -> None:
        self.kinds = settings.kinds
        self.noise = settings.noise
        self.max_items = settings.max_literal_items
        self.constructors = CONSTRUCTORS | settings.constructors
        self.receivers = CONFIG_RECEIVERS | {r.lower() for r in settings.config_receivers}
        self.prefix = module_prefix(path, settings.family_aliases)
        self._is_ctor: dict[str, bool] = {}

    def is_constructor(self, name: str) -> bool:
        known = self._is_ctor.get(name)
        if known is None:
            known = self._is_ctor[name] = name in self.constructors or bool(CONSTRUCTOR_SUFFIX.search(name))
        return known

    def is_config_like(self, name: str | None) -> bool:
        if not name:
            return False
        lowered = name.lower()
        if lowered in self.receivers or lowered.endswith(("config", "cfg", "params")):
            return True
        return any(part in self.receivers for part in lowered.split("_"))

    def is_noise(self, kind: str, key: str, value: Any) -> bool:
        noise = self.noise
        if value is None:
            return "none" in noise
        cls = value.__class__
        if cls is int and -1 <= value <= 1 and "trivial_numbers" in noise:
            return True
        if cls is float and value in (0.0, 1.0, -1.0) and kind in ("clamp", "threshold") and "trivial_numbers" in noise:
            return True
        if (cls is str or cls is tuple or cls is dict) and not value and "empty" in noise:
            return True
        if cls is str and "\n" in value and "text" in noise:
            return True
        if cls is bool and kind in ("signature_default", "argparse_default") and "bool_defaults" in noise:
            return True
        if "logging" in noise and (
            key.lower() in LOG_KEYS
            or (kind in ENV_KINDS and LOG_ENV.search(key) is not None)
            or (cls is str and value.upper() in LOG_LEVELS)
        ):
            return True
        if "private" in noise and key.startswith("_") and kind in ("constant", "signature_default"):
            return True
        return "structural" in noise and kind == "constructor_kwarg" and (
            key in STRUCTURAL_KWARGS or (cls is str and key in STRUCTURAL_MODES)
        )

    def literal(self, node: ast.AST) -> Any:
        """The value of a literal expression, or `NOT`."""
        budget = [self.max_items]
        return literal_value(node, budget)
