"""The shipped JSON Schemas (draft 2020-12): loading, a registry for relative ``$ref``, export for editors."""

from __future__ import annotations

import functools
import importlib.resources
import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["CONFIG_SCHEMA", "HARDWARE_SCHEMA", "PLAN_SCHEMA", "accepts", "export_schemas", "registry", "schema",
           "schema_dir", "validator"]

CONFIG_SCHEMA = "config.schema.json"  # tkplan: ignore[constant]
HARDWARE_SCHEMA = "hardware.schema.json"  # tkplan: ignore[constant]
PLAN_SCHEMA = "plan.schema.json"  # tkplan: ignore[constant]


def schema_dir() -> Path:
    """The directory of the shipped schema files."""
    return Path(str(importlib.resources.files("tkplan.schema")))


@functools.cache
def _files() -> dict[str, dict[str, Any]]:
    root = schema_dir()
    return {p.relative_to(root).as_posix(): json.loads(p.read_text("utf-8")) for p in sorted(root.rglob("*.json"))}


def schema(name: str) -> dict[str, Any]:
    """The schema stored at ``name`` relative to the schema directory (``families/lightgbm.json``)."""
    return _files()[name]


@functools.cache
def registry() -> Any:
    """A ``referencing.Registry`` holding every shipped schema under its relative path."""
    import referencing
    from referencing.jsonschema import DRAFT202012

    # Without their "$schema" the resources keep the validator's own class across "$ref" (jsonschema would
    # switch to the stock class its meta-schema names, and lose the strict integers of `validator`).
    return referencing.Registry().with_resources(
        (name, DRAFT202012.create_resource({k: v for k, v in contents.items() if k != "$schema"}))
        for name, contents in _files().items()
    )


@functools.cache
def validator(name: str) -> Any:
    """A draft 2020-12 validator for the schema ``name``, resolving relative references.

    ``integer`` means an integer as written (``64``), not a float that happens to be whole (``1e29``,
    ``64.0``): code that sizes memory or counts things gets an ``int`` it can use.
    """
    return _validator_class()({"$ref": name}, registry=registry())


@functools.cache
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators

    strict = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return validators.extend(Draft202012Validator, type_checker=strict)  # type: ignore[no-untyped-call]


def accepts(path: tuple[str, ...], value: Any) -> bool:
    """Whether the configuration declares the key ``path`` and takes ``value`` there.

    A key is declared by a schema's ``properties`` or by its ``additionalProperties`` schema (``env.NAME``,
    ``project.*``), but not as a family of one's own: ``families.NAME`` must be a shipped family.
    """
    from jsonschema import Draft202012Validator

    resolver = registry().resolver()
    node: Any = {"$ref": CONFIG_SCHEMA}
    for depth, key in enumerate(path):
        while isinstance(node, dict) and "$ref" in node:
            resolved = resolver.lookup(node["$ref"])
            node, resolver = resolved.contents, resolved.resolver
        if not isinstance(node, dict):
            return False
        extra = node.get("additionalProperties") if path[:depth] != ("families",) else None
        node = node.get("properties", {}).get(key, extra if isinstance(extra, dict) else None)
        if node is None:
            return False
    document: Any = value  # validated in place: a profile holding only this value
    for key in reversed(path):
        document = {key: document}
    errors = Draft202012Validator({"$ref": CONFIG_SCHEMA}, registry=registry()).iter_errors(document)
    return not any(e.validator != "required" and tuple(e.absolute_path)[:len(path)] == path for e in errors)


def export_schemas(directory: Path) -> list[Path]:
    """Copy every schema into ``directory`` (same layout, so relative ``$ref`` keep working); return the files."""
    written = []
    for name in _files():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(schema_dir() / name, target)
        written.append(target)
    return written
