"""Validate a merged configuration against the JSON Schema; every problem names its key, value and origin.

Three passes, all problems reported together: the schema itself (types, ranges, enums, unknown keys with
"did you mean"); finiteness — NaN and ±infinity pass JSON Schema's bounds (every comparison with NaN is
false), so every number is checked to be finite; and completeness — the resolved configuration must hold
every key the schema declares without a ``default``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from tkplan.errors import ConfigError, Problem, did_you_mean
from tkplan.planner._merge import Provenance, dotted
from tkplan.planner._schemas import CONFIG_SCHEMA, registry, schema, validator
from tkplan.planner._yaml import parse_value

__all__ = ["accepted_types", "explain_error", "schema_problems", "typed_value", "validate_changes", "validate_config"]

_JSON_TYPES = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


def validate_config(config: Mapping[str, Any], provenance: Provenance) -> list[Problem]:
    """Return every problem of ``config``, each located through ``provenance``, sorted by key path.

    A value that came through a reference says so: the problem names the reference and where its value
    was set, so a wrong type is fixed at its source.
    """

    def locate(path: tuple[str | int, ...]) -> str:
        return _origin(provenance, path)

    problems = schema_problems(config, CONFIG_SCHEMA, locate)
    problems += _missing(config, schema(CONFIG_SCHEMA), (), provenance)
    unique = {(p.path, p.message): _through_reference(p, provenance) for p in problems}
    return sorted(unique.values(), key=lambda p: (p.path, p.message))


def validate_changes(config: Mapping[str, Any], provenance: Provenance, changed: Iterable[tuple[str | int, ...]]
                     ) -> list[Problem]:
    """`validate_config` of a configuration that differs from a valid one only at the ``changed`` key paths.

    Each changed path is validated from its *root*: the nearest mapping above it whose schema could judge the
    change, so the problems are exactly those `validate_config` finds (a sweep point checks only what it changed).
    From the top, a path goes down a ``properties`` or ``additionalProperties`` schema as long as the schema above
    looks at nothing but its keys and each key's own value (`_BY_KEY`) — ``anyOf``, ``enum`` and the like judge the
    value there as a whole — and stops at a list (its items are judged together). A changed set of keys is a
    change of the mapping that holds them: ``changed`` must name that mapping (as `changed_paths` does).
    """

    def locate(path: tuple[str | int, ...]) -> str:
        return _origin(provenance, path)

    roots: dict[tuple[str | int, ...], tuple[Mapping[str, Any], Any]] = {}
    for path in sorted(set(changed), key=len):
        if any(path[:len(root)] == root for root in roots):
            continue
        root, node, resolver = _root(path)
        if not any(root[:len(other)] == other for other in roots):
            roots = {r: v for r, v in roots.items() if r[:len(root)] != root}
            roots[root] = (node, resolver)
    problems: list[Problem] = []
    checker = validator(CONFIG_SCHEMA)
    for root, (node, resolver) in roots.items():
        value = _at(config, root)
        bad = [((*root, *path), number) for path, number in _non_finite(value, ())]
        paths = {dotted(path) for path, _ in bad}
        problems += [Problem(f"expected a finite number, got {number!r}", dotted(path), locate(path),
                             "write a finite number") for path, number in bad]
        for error in checker.descend(value, node, resolver=resolver):
            error.path.extendleft(reversed(root))  # as jsonschema itself prefixes the errors of a child
            problems += [p for p in explain_error(error, locate) if p.path not in paths]
        problems += _missing(value, node, tuple(str(k) for k in root), provenance, resolver)
    unique = {(p.path, p.message): _through_reference(p, provenance) for p in problems}
    return sorted(unique.values(), key=lambda p: (p.path, p.message))


_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "deprecated"})
_BY_KEY = _ANNOTATIONS | {"type", "properties", "additionalProperties", "required", "propertyNames", "minProperties",
                          "maxProperties"}
"""The keywords of a mapping's schema that judge only its keys and each key's value on its own."""


def _root(path: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], Mapping[str, Any], Any]:
    """Where a change at ``path`` is validated from: (root path, its schema, the resolver for that schema)."""
    node, resolver = _resolve({"$ref": CONFIG_SCHEMA}, registry().resolver())
    for depth, key in enumerate(path):
        if not isinstance(key, str) or not set(node) <= _BY_KEY:
            return path[:depth], node, resolver
        child = node.get("properties", {}).get(key, node.get("additionalProperties"))
        if not isinstance(child, dict):  # a key the schema refuses or does not describe: judged by its mapping
            return path[:depth], node, resolver
        if "$ref" in child and not set(child) - {"$ref"} <= _ANNOTATIONS:
            return path[:depth + 1], child, resolver  # a reference with keywords of its own: judged there
        node, resolver = _resolve(child, resolver)
    return path, node, resolver


def _at(config: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        config = config[key]
    return config


def schema_problems(data: Any, name: str, locate: Callable[[tuple[Any, ...]], str]) -> list[Problem]:
    """Every problem of ``data`` against the schema ``name``, and every number in it that is not finite.

    A key holding NaN or an infinity is reported once, as not finite, whatever the schema says of it.
    """
    bad = list(_non_finite(data, ()))
    paths = {dotted(path) for path, _ in bad}
    problems = [Problem(f"expected a finite number, got {value!r}", dotted(path), locate(path),
                        "write a finite number") for path, value in bad]
    problems += [p for error in validator(name).iter_errors(data) for p in explain_error(error, locate)
                 if p.path not in paths]
    return problems


def _non_finite(data: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], float]]:
    """(path, value) of every NaN or infinity in ``data``."""
    if isinstance(data, float) and not math.isfinite(data):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _non_finite(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _non_finite(value, (*path, i))


def _through_reference(problem: Problem, provenance: Provenance) -> Problem:
    chain = provenance.get(problem.path)
    if not chain or not chain[-1].via:
        return problem
    setting, last = chain[-1], chain[-1].via[-1]
    came = f"the value came through {setting.written!r} from {last.key} ({last.where or last.source})"
    return Problem(problem.message, problem.path, problem.origin, "; ".join(filter(None, [problem.hint, came])))


_SCHEMA_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null", dict: "object",
                 list: "array"}


def typed_value(path: tuple[str | int, ...], text: str) -> Any:
    """An environment value typed for the key it lands on: read as a YAML scalar, kept as text where the
    schema takes a string there but not the type read (``${env:USER}`` that holds ``123`` for ``run.name``)."""
    try:
        value = parse_value(text, "")
    except ConfigError:
        return text
    accepted = _types_at(path)
    kind = _SCHEMA_TYPES.get(type(value), "")
    if not accepted or kind in accepted or (kind == "integer" and "number" in accepted):
        return value
    return text if "string" in accepted else value


def accepted_types(path: tuple[str | int, ...]) -> set[str]:
    """The JSON types (``integer``, ``number``, ``string``…) the config schema accepts at ``path``; empty when it
    does not say (an unknown key, or a free-form section)."""
    return _types_at(path)


def _types_at(path: tuple[str | int, ...]) -> set[str]:
    """The JSON types the config schema accepts at ``path`` (empty when it does not say)."""
    node, resolver = _resolve(schema(CONFIG_SCHEMA), registry().resolver())
    for key in path:
        properties = node.get("properties", {})
        if key in properties:
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif isinstance(key, int) and isinstance(node.get("items"), dict):
            node = node["items"]
        else:
            return set()
        node, resolver = _resolve(node, resolver)
    return _types(node, resolver)


def _types(node: Mapping[str, Any], resolver: Any) -> set[str]:
    if "type" in node:
        return {node["type"]} if isinstance(node["type"], str) else set(node["type"])
    values = [node["const"]] if "const" in node else node.get("enum", [])
    found = {_SCHEMA_TYPES.get(type(v), "") for v in values}
    for sub in node.get("anyOf", []) + node.get("oneOf", []):
        found |= _types(*_resolve(sub, resolver))
    return found - {""}


def _origin(provenance: Provenance, path: tuple[Any, ...]) -> str:
    """Where the value at ``path`` came from: its own setting, a parent's, or else the first setting under it.

    A mapping has no setting of its own (provenance records leaves), so an unknown section such as
    ``famlies:`` is located at the first leaf written under it (``file:line:col``, not just the file).
    """
    for cut in range(len(path), 0, -1):
        chain = provenance.get(dotted(path[:cut]))
        if chain:
            return chain[-1].where
    if not path:
        return ""
    prefix = dotted(path) + "."
    children = [chain[-1] for key, chain in provenance.items() if key.startswith(prefix) and chain]
    if not children:
        return ""
    first = min(children, key=lambda s: (s.file is None, s.file or s.source, s.line or 0, s.col or 0))
    return first.where


def _describe(value: Any) -> str:
    kind = _JSON_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)):
        return kind
    return f"{kind} {value!r}"


def _expected_type(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    words = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
             "number": "a number", "boolean": "a boolean (true/false)", "null": "null"}
    return " or ".join(words.get(n, n) for n in names)


def explain_error(error: Any, locate: Callable[[tuple[Any, ...]], str]) -> Iterator[Problem]:
    """Turn one JSON Schema error into problems a user can act on: what is wrong, at which key, from where.

    Args:
        error: a ``jsonschema`` validation error.
        locate: key path → where its value came from (``file:line:col``, ``env:NAME``, ``cli:arg N``).
    """
    path = tuple(error.absolute_path)
    key = dotted(path)
    kind, value, expected = error.validator, error.instance, error.validator_value
    origin = locate(path)
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for extra in sorted(set(value) - set(allowed)):
            yield Problem(f"unknown key {extra!r}", dotted((*path, extra)), locate((*path, extra)),
                          did_you_mean(extra, allowed) or f"allowed here: {', '.join(allowed)}")
        return
    if kind == "required":
        for name in [n for n in expected if n not in value]:
            yield Problem(f"missing key {name!r}", dotted((*path, name)), origin)
        return
    messages: dict[str, Callable[[], str]] = {
        "type": lambda: f"expected {_expected_type(expected)}, got {_describe(value)}",
        "enum": lambda: f"must be one of {', '.join(repr(v) for v in expected)}; got {_describe(value)}",
        "const": lambda: f"must be {expected!r}; got {_describe(value)}",
        "minimum": lambda: f"must be ≥ {expected}; got {value!r}",
        "maximum": lambda: f"must be ≤ {expected}; got {value!r}",
        "exclusiveMinimum": lambda: f"must be > {expected}; got {value!r}",
        "exclusiveMaximum": lambda: f"must be < {expected}; got {value!r}",
        "minItems": lambda: f"needs at least {expected} item(s); got {len(value)}",
        "maxItems": lambda: f"takes at most {expected} item(s); got {len(value)}",
        "uniqueItems": lambda: f"items must be unique; got {value!r}",
        "minLength": lambda: f"must not be shorter than {expected}; got {value!r}",
        "pattern": lambda: f"must match {expected}; got {value!r}",
        "propertyNames": lambda: f"bad key name in {key or 'the top level'}: {error.message}",
    }
    hint = ""
    if kind == "enum" and isinstance(value, str):
        hint = did_you_mean(value, [v for v in expected if isinstance(v, str)])
    if kind in ("anyOf", "oneOf"):
        description = error.schema.get("description", "")
        options = "; ".join(_summary(sub) for sub in error.schema[kind])
        yield Problem(f"got {_describe(value)}; expected {options}", key, origin, description)
        return
    message = messages[kind]() if kind in messages else error.message
    yield Problem(message, key, origin, hint)


def _summary(sub: Mapping[str, Any]) -> str:
    if "const" in sub:
        return repr(sub["const"])
    text = _expected_type(sub.get("type", "any"))
    if "minimum" in sub:
        text += f" ≥ {sub['minimum']}"
    return text


def _resolve(node: Mapping[str, Any], resolver: Any) -> tuple[Mapping[str, Any], Any]:
    while "$ref" in node:
        resolved = resolver.lookup(node["$ref"])
        node, resolver = resolved.contents, resolved.resolver
    return node, resolver


def _missing(config: Any, node: Mapping[str, Any], path: tuple[str, ...], provenance: Provenance,
             resolver: Any = None) -> list[Problem]:
    """Keys the schema declares (without a ``default``) that no layer sets; unknown families named."""
    node, resolver = _resolve(node, resolver or registry().resolver())
    if not isinstance(config, dict):
        return []
    problems: list[Problem] = []
    properties = node.get("properties", {})
    for name, sub in properties.items():
        if name in config:
            problems += _missing(config[name], sub, (*path, name), provenance, resolver)
        elif "default" not in sub:
            problems.append(Problem("missing: no layer sets this key", dotted((*path, name)), _origin(provenance, path),
                                    "set it in a profile or with an override"))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for name in sorted(set(config) - set(properties)):
            if path == ("families",) and isinstance(config[name], dict) and "entrypoint" not in config[name]:
                problems.append(Problem(f"unknown family {name!r}", dotted((*path, name)),
                                        _origin(provenance, (*path, name)),
                                        did_you_mean(name, properties) or
                                        "a family of your own needs `entrypoint` and `runtime`"))
                continue
            problems += _missing(config[name], extra, (*path, name), provenance, resolver)
    return problems
