"""Resolve references between keys (``${path.to.key}``) and to the environment (``${env:NAME[,default]}``).

References resolve once every layer and override is merged, so a reference reads the value in force: the
highest layer's. A reference alone (``${a.b}``) takes the referred value with its type, mappings and lists
included; one inside a string (``${model.name}-${machine.name}``) is replaced by the value's text. A
leading dot refers relative to the key's own mapping (``${.epochs}``: a sibling). ``${oc.env:NAME}`` is an
alias of ``${env:NAME}`` (OmegaConf's spelling); ``\\${`` writes a literal ``${``. Each resolved setting
keeps what was written and the chain of keys it resolved through (`Hop`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tkplan.errors import Problem, did_you_mean
from tkplan.planner._merge import Hop, Provenance, Setting, dotted

__all__ = ["MAX_DEPTH", "Resolution", "resolve_references"]

MAX_DEPTH = 16  # tkplan: ignore[constant]  bound on a chain of references, as MAX_NODES bounds aliases
_ENV_RESOLVERS = ("env", "oc.env")

Path = tuple[str | int, ...]
Typed = Callable[[Path, str], Any]
"""``(key path, text) → value``: types an environment value for where it lands (the schema's type)."""


@attrs.frozen
class Resolution:
    """The configuration with every reference replaced, its provenance, the variables read, the problems.

    ``unresolved`` holds every key left as written because its chain broke: the problems name where it broke.
    """

    config: dict[str, Any]
    provenance: Provenance
    env_used: dict[str, str]
    problems: tuple[Problem, ...]
    unresolved: frozenset[str] = frozenset()


@attrs.frozen
class _Ref:
    body: str  # what stands between ${ and }


def resolve_references(config: Mapping[str, Any], provenance: Provenance, env: Mapping[str, str], *,
                       hermetic: bool = False, typed: Typed = lambda path, text: text) -> Resolution:
    """Replace every reference in ``config``; report every bad one, located where it was written.

    Args:
        config: the merged configuration (not changed).
        provenance: its provenance; the returned one records each resolved setting's chain.
        env: the environment ``${env:NAME}`` reads.
        hermetic: the environment is ignored: ``${env:NAME}`` without a default is a problem.
        typed: types an environment value that is a whole value, for where it lands.
    """
    found: list[Path] = []
    _find(config, (), found)
    if not found:
        return Resolution(dict(config), provenance, {}, ())
    resolver = _Resolver(dict(config), provenance, env, hermetic, typed)
    for path in found:
        try:
            resolver.leaf(path)
        except _Fail as exc:
            if exc.problem.message:  # else reported where the chain broke
                resolver.problems.append(exc.problem)
    return Resolution(resolver.config, resolver.provenance, resolver.env_used, tuple(resolver.problems),
                      frozenset(dotted(p) for p in resolver.failed))


class _Fail(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


class _Resolver:
    """Resolves each string with references once (memoised), following chains with a stack for cycles."""

    def __init__(self, config: dict[str, Any], provenance: Provenance, env: Mapping[str, str], hermetic: bool,
                 typed: Typed) -> None:
        self.config = config
        self.provenance = dict(provenance)  # a chain is copied when its last setting is replaced
        self.original = provenance
        self.env, self.hermetic, self.typed = env, hermetic, typed
        self.env_used: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.done: dict[Path, tuple[Any, tuple[Hop, ...]]] = {}
        self.failed: set[Path] = set()
        self.stack: list[Path] = []
        self.copied: set[int] = {id(config)}  # containers already copied: written in place

    def put(self, path: Path, value: Any) -> None:
        """Write ``value`` at ``path``, copying each container on the way once, so the input stays as it was."""
        node: Any = self.config
        for key in path[:-1]:
            child = node[key]
            if id(child) not in self.copied:
                child = dict(child) if isinstance(child, dict) else list(child)
                self.copied.add(id(child))
                node[key] = child
            node = child
        node[path[-1]] = value

    def owner(self, path: Path) -> Path:
        """The path whose provenance records ``path``: the path itself, or the list holding it."""
        for cut in range(len(path), 0, -1):
            if dotted(path[:cut]) in self.original:
                return path[:cut]
        return path

    def hop(self, target: Path) -> Hop:
        """The step to ``target``: its key, its value as written, and the setting in force there."""
        chain = self.original.get(dotted(self.owner(target)))
        if not chain:
            return Hop(dotted(target), None, "", "")
        return Hop(dotted(target), chain[-1].value, chain[-1].source, chain[-1].where)

    def leaf(self, path: Path) -> tuple[Any, tuple[Hop, ...]]:
        """Resolve the string at ``path`` and write the result into the configuration and its provenance."""
        if path in self.done:
            return self.done[path]
        if path in self.failed:
            raise _Fail(Problem("", dotted(path)))  # reported where it failed first
        if path in self.stack:
            cycle = [dotted(p) for p in self.stack[self.stack.index(path):]] + [dotted(path)]
            raise _Fail(Problem(f"reference cycle: {' → '.join(cycle)}", dotted(path), self.hop(path).where,
                                "break the cycle: give one of these keys a value"))
        if len(self.stack) >= MAX_DEPTH:
            chain = " → ".join(dotted(p) for p in (*self.stack, path))
            raise _Fail(Problem(f"references nested too deep (more than {MAX_DEPTH}): {chain}", dotted(self.stack[0]),
                                self.hop(self.stack[0]).where, "refer to the value's source directly"))
        self.stack.append(path)
        try:
            text = _get(self.config, path)
            value, hops = self.string(text, path)
        except _Fail:
            self.failed.add(path)
            raise
        finally:
            self.stack.pop()
        self.put(path, value)
        self.done[path] = (value, hops)
        self.record(path, hops)
        return value, hops

    def record(self, path: Path, hops: tuple[Hop, ...]) -> None:
        """Keep in the setting in force what was written there and the chain it resolved through."""
        owner = self.owner(path)
        chain = self.provenance.get(dotted(owner))
        if not chain:
            return
        last = chain[-1]
        written = last.written if last.written is not None else last.value
        value = _get(self.config, owner)
        if isinstance(value, (dict, list)):
            value = copy.deepcopy(value)
        self.provenance[dotted(owner)] = [*chain[:-1], Setting(value, last.source, last.file, last.line, last.col,
                                                               written, (*last.via, *hops))]

    def string(self, text: str, path: Path) -> tuple[Any, tuple[Hop, ...]]:
        parts = _split(text, lambda message, hint: self.fail(message, hint, path))
        if len(parts) == 1 and isinstance(parts[0], _Ref):
            return self.reference(parts[0], path, whole=True)
        out: list[str] = []
        hops: list[Hop] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value, more = self.reference(part, path, whole=False)
            if isinstance(value, (dict, list)):
                raise self.fail(f"${{{part.body}}} is {'a mapping' if isinstance(value, dict) else 'a list'}, "
                                "which cannot be placed inside a string", "refer to one of its keys", path)
            out.append(value if isinstance(value, str) else json.dumps(value))
            hops += more
        return "".join(out), tuple(hops)

    def fail(self, message: str, hint: str, path: Path) -> _Fail:
        """A problem with the string at ``path``, located where that string was written."""
        return _Fail(Problem(message, dotted(path), self.hop(path).where, hint))

    def reference(self, ref: _Ref, path: Path, whole: bool) -> tuple[Any, tuple[Hop, ...]]:
        resolver, colon, rest = ref.body.partition(":")
        if colon and resolver.strip() in _ENV_RESOLVERS:
            return self.env_value(rest, path, whole)
        if colon:
            raise self.fail(f"unknown resolver {resolver.strip()!r} in ${{{ref.body}}}",
                            "tkplan resolves ${path.to.key}, ${env:NAME} and ${env:NAME,default}", path)
        target = self.target(ref.body.strip(), path)
        value = _get(self.config, target)
        hops: tuple[Hop, ...] = ()
        if target in self.done or target in self.failed or (isinstance(value, str) and "${" in value):
            value, hops = self.leaf(target)  # resolved already (memoised), or now
        elif isinstance(value, (dict, list)):
            self.stack.append(target)
            try:
                self.leaves_under(value, target)
            finally:
                self.stack.pop()
            value = _get(self.config, target)
        return copy.deepcopy(value), (self.hop(target), *hops)

    def leaves_under(self, node: Any, path: Path) -> None:
        """Resolve every string with references under ``node`` (a mapping or list referred to as a whole)."""
        found: list[Path] = []
        _find(node, path, found)
        for here in found:
            self.leaf(here)

    def target(self, body: str, path: Path) -> Path:
        """The key path ``body`` names, checked to exist (with a "did you mean" when it does not)."""
        if not body or any(c in body for c in " ${}") or body.endswith("."):
            raise self.fail(f"bad reference ${{{body}}}", "write ${path.to.key} or ${env:NAME}", path)
        dots = len(body) - len(body.lstrip("."))
        base: Path = path[:-dots] if dots else ()
        if dots > len(path):
            raise self.fail(f"${{{body}}} climbs above the top level", "use fewer leading dots", path)
        parts = body[dots:].split(".")
        node: Any = self.config
        resolved: list[str | int] = list(base)
        for part in base:
            node = node[part]
        for part in parts:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                key: str | int = int(part)
            elif isinstance(node, dict) and part in node:
                key = part
            else:
                here = dotted((*resolved, part))
                keys = [str(k) for k in node] if isinstance(node, dict) else []
                hint = did_you_mean(part, keys) or (f"keys here: {', '.join(sorted(keys))}" if keys else
                                                    f"{dotted(resolved) or 'the top level'} holds no keys")
                raise self.fail(f"${{{body}}} refers to a missing key: {here} does not exist", hint, path)
            resolved.append(key)
            node = node[key]
        return tuple(resolved)

    def env_value(self, rest: str, path: Path, whole: bool) -> tuple[Any, tuple[Hop, ...]]:
        name, comma, default = rest.partition(",")
        name = name.strip()
        if not name or not (name.replace("_", "a").isalnum() and not name[0].isdigit()):
            raise self.fail(f"bad variable name {name!r} in ${{env:{rest}}}",
                            "write ${env:NAME} or ${env:NAME,default}", path)
        if not self.hermetic and name in self.env:
            text, where = self.env[name], f"env:{name}"
            self.env_used[name] = text
        elif comma:
            text, where = default.strip(), "default"
        elif self.hermetic:
            raise self.fail(f"${{env:{name}}} reads the environment, which --hermetic ignores",
                            f"give it a default: ${{env:{name},value}}", path)
        else:
            raise self.fail(f"environment variable {name} is not set",
                            f"set it, or give a default: ${{env:{name},value}}", path)
        value = self.typed(path, text) if whole else text
        return value, (Hop(f"env:{name}", text, f"env:{name}", where),)


def _split(text: str, fail: Callable[[str, str], _Fail]) -> list[str | _Ref]:
    """Split a string into literal text and references; ``\\${`` is a literal ``${``."""
    parts: list[str | _Ref] = []
    literal = ""
    start = 0
    while (i := text.find("${", start)) >= 0:
        if i and text[i - 1] == "\\":
            literal += text[start:i - 1] + "${"
            start = i + 2
            continue
        close = text.find("}", i + 2)
        if close < 0:
            raise fail(f"unclosed reference in {text!r}", "close it with }, or write \\${ for a literal ${")
        body = text[i + 2:close]
        if "${" in body:
            raise fail(f"nested reference in {text!r}", "a reference names a key or a variable; it cannot hold another")
        literal += text[start:i]
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(_Ref(body))
        start = close + 1
    literal += text[start:]
    if literal or not parts:
        parts.append(literal)
    return parts


def _find(node: Any, path: Path, found: list[Path]) -> None:
    """Append the path of every string under ``node`` that holds ``${``."""
    items = node.items() if type(node) is dict else enumerate(node)
    for key, value in items:
        kind = type(value)
        if kind is str:
            if "${" in value:
                found.append((*path, key))
        elif kind is dict or kind is list:
            _find(value, (*path, key), found)


def _get(config: Any, path: Path) -> Any:
    for key in path:
        config = config[key]
    return config

