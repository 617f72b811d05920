"""Runtime traits a family leaves out get their documented defaults, so a family of one's own is an
``entrypoint`` and its hyperparameters.

The defaults are the ``default`` of each property in ``schema/family_runtime.json`` (``display_name``
defaults to the family's key). They are written into the configuration before it is validated, each leaf
with its origin ``default`` (``tkplan:schema/family_runtime.json``), so the plan records them and
``tkplan explain families.NAME.runtime`` shows where each came from. An ``isolation.mode`` set without a
reason gets one that says where the mode was set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tkplan.planner._merge import Provenance, Setting, set_path
from tkplan.planner._schemas import schema

__all__ = ["RUNTIME_SCHEMA", "fill_trait_defaults", "trait_defaults"]

RUNTIME_SCHEMA = "family_runtime.json"  # tkplan: ignore[constant]  a shipped file's name


def trait_defaults(family: str) -> dict[str, Any]:
    """Every runtime trait's default for ``family``."""
    properties = schema(RUNTIME_SCHEMA)["properties"]
    defaults = {name: sub["default"] for name, sub in properties.items() if "default" in sub}
    return {"display_name": family, **defaults}


def fill_trait_defaults(config: dict[str, Any], provenance: Provenance) -> None:
    """Fill the runtime traits each family section leaves out (in place), recording their origin.

    A section without ``runtime`` and without ``entrypoint`` is left alone: it is no family of its own
    (validation reports it as an unknown family, e.g. a misspelt one).
    """
    families = config.get("families")
    if not isinstance(families, dict):
        return
    origin = Setting(None, "default", f"tkplan:schema/{RUNTIME_SCHEMA}")
    for family, section in families.items():
        if not isinstance(section, dict) or not ({"runtime", "entrypoint"} & set(section)):
            continue
        runtime = section.get("runtime", {})
        if not isinstance(runtime, dict):
            continue  # a wrong type: validation says so
        isolation = runtime.get("isolation")
        if isinstance(isolation, dict) and "mode" in isolation and "reason" not in isolation:
            key = f"families.{family}.runtime.isolation.mode"
            where = provenance[key][-1].where if provenance.get(key) else key
            reason = f"{isolation['mode']}, as {key} says ({where})"
            set_path(config, ("families", family, "runtime", "isolation", "reason"), reason, origin, provenance)
        _fill(config, ("families", family, "runtime"), runtime, trait_defaults(family), origin, provenance)


def _fill(config: dict[str, Any], path: tuple[str, ...], present: Mapping[str, Any], defaults: Mapping[str, Any],
          origin: Setting, provenance: Provenance) -> None:
    for name, value in defaults.items():
        here = (*path, name)
        if name not in present:
            set_path(config, here, value, origin, provenance)
        elif isinstance(value, dict) and isinstance(present[name], dict):
            _fill(config, here, present[name], value, origin, provenance)
