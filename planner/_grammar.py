"""The command-line override grammar Hydra users type, parsed by hand into typed values.

A word is ``key=value`` (set a key that exists), ``+key=value`` (add a key that no layer has),
``++key=value`` (add or set), ``~key`` (remove) or ``~key=value`` (remove only if the value is that).
A value is an element, or a sweep of several (for ``tkplan sweep``)::

    value    := sweep | element
    sweep    := element (',' element)+  |  'choice(' element (',' element)* ')'  |  'range(' num ',' num [',' num] ')'
    element  := quoted | '[' [element (',' element)*] ']' | '{' [key ':' element (',' key ':' element)*] '}' | primitive
    quoted   := "'" ... "'" | '"' ... '"'         (a backslash escapes the quote and itself; always a string)
    primitive:= any text without , [ ] { } ( ) quotes, outer spaces stripped; ${...} may hold anything

A primitive is typed like a YAML 1.2 core scalar: ``null``/``~``, ``true``/``false``, integers, floats
(``1e-3``, ``.inf``), else a string. `format_value` writes a value back in this grammar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import attrs

from tkplan.errors import ConfigError, Problem
from tkplan.planner._yaml import parse_value

__all__ = ["NO_VALUE", "OPS", "ChoiceSweep", "ParsedOverride", "RangeSweep", "Sweep", "format_override",
           "format_value", "parse_override"]

OPS = ("=", "+", "++", "~")  # tkplan: ignore[constant]  set, add, add or set, remove
"""The operations: ``key=v`` sets, ``+key=v`` adds, ``++key=v`` adds or sets, ``~key[=v]`` removes."""

MAX_NESTING = 100  # tkplan: ignore[constant]  bound on brackets inside one value
_NULLS = ("null", "Null", "NULL", "~")
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")
_STRUCTURE = ",[]{}()'\""
_NUMBER_STARTS = frozenset("+-.0123456789")
_BARE = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@-]*")
"""Strings written without quotes by `format_value`: nothing in them can be read as structure or a number."""


@attrs.frozen
class ChoiceSweep:
    """A sweep over given values: ``a,b,c`` or ``choice(a,b,c)``."""

    values: tuple[Any, ...]


@attrs.frozen
class RangeSweep:
    """A sweep over ``range(start, stop[, step])``: start included, stop excluded, as Python's ``range``."""

    start: int | float
    stop: int | float
    step: int | float = 1

    def values(self) -> tuple[int | float, ...]:
        """The values of the range, in order."""
        count = max(0, -(-(self.stop - self.start) // self.step))
        return tuple(self.start + i * self.step for i in range(int(count)))


Sweep = ChoiceSweep | RangeSweep


class _NoValue:
    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()
"""The value of a ``~key`` removal that names no value to match."""


@attrs.frozen
class ParsedOverride:
    """One command-line override word, parsed.

    Attributes:
        op: ``=`` (set), ``+`` (add), ``++`` (add or set) or ``~`` (remove).
        path: the key path.
        value: the typed value, a `ChoiceSweep`/`RangeSweep`, or `NO_VALUE` for a bare ``~key``.
    """

    op: str
    path: tuple[str, ...]
    value: Any = NO_VALUE


def parse_override(word: str, source: str) -> ParsedOverride:
    """Parse one override word (``key=value``, ``+key=value``, ``++key=value``, ``~key``, ``~key=value``).

    Raises:
        ConfigError: a malformed key or value; the problem names ``source`` and says what to write.
    """
    op = "++" if word.startswith("++") else word[:1] if word[:1] in ("+", "~") else "="
    rest = word[len(op):] if op != "=" else word
    key, eq, text = rest.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p or any(c in p for c in " +~${}[]") for p in parts):
        raise ConfigError([Problem(f"bad override {word!r}: expected key.path=value", origin=source,
                                   hint="forms: key=v, +key=v (add), ++key=v (add or set), ~key or ~key=v (remove)")])
    if not eq:
        if op != "~":
            raise ConfigError([Problem(f"bad override {word!r}: {op}key needs =value", origin=source)])
        return ParsedOverride(op, tuple(parts))
    try:
        value = _Parser(text).top()
    except _Fail as exc:
        raise ConfigError([Problem(f"cannot read value {text!r}: {exc.message}", origin=source,
                                   hint=exc.hint)]) from None
    return ParsedOverride(op, tuple(parts), value)


def format_value(value: Any) -> str:
    """Write ``value`` (plain data or a sweep) in the override grammar; `parse_override` reads it back equal."""
    if isinstance(value, ChoiceSweep):
        return "choice(" + ", ".join(format_value(v) for v in value.values) + ")"
    if isinstance(value, RangeSweep):
        return f"range({format_value(value.start)}, {format_value(value.stop)}, {format_value(value.step)})"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        if _BARE.fullmatch(value) and _scalar(value) == value and "${" not in value:
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{format_value(str(k))}: {format_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} in the override grammar")


def format_override(override: ParsedOverride) -> str:
    """Write ``override`` back as one command-line word."""
    prefix = "" if override.op == "=" else override.op
    key = prefix + ".".join(override.path)
    return key if override.value is NO_VALUE else f"{key}={format_value(override.value)}"


def _scalar(text: str) -> Any:
    """Type a primitive as a YAML 1.2 core scalar: null, boolean, integer, float, or else the string itself."""
    if text in _NULLS:
        return None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    if text[:1] in _NUMBER_STARTS:  # a number exactly when YAML reads one (``0_E0`` is, ``.0E0`` is not)
        try:
            value = parse_value(text, "")
        except ConfigError:
            return text
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return text


class _Fail(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        self.message, self.hint = message, hint


class _Parser:
    """Recursive descent over one value's text; positions in messages are 1-based columns of the value."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, message: str, hint: str = "") -> _Fail:
        return _Fail(f"{message} at column {self.pos + 1}", hint)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected {char!r}, found {found}")
        self.pos += 1

    def top(self) -> Any:
        """The whole value: an element, a comma sweep, or a ``choice()``/``range()`` call."""
        self.skip_spaces()
        if self.pos == len(self.text):
            return ""  # key= sets the empty string
        call = self.call()
        if call is not None:
            self.end()
            return call
        items = [self.element()]
        self.skip_spaces()
        while self.peek() == ",":
            self.pos += 1
            items.append(self.element())
            self.skip_spaces()
        self.end()
        return items[0] if len(items) == 1 else ChoiceSweep(tuple(items))

    def end(self) -> None:
        self.skip_spaces()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}",
                            "quote a value that holds , [ ] { } ( ) or quotes: key='a,b'")

    def call(self) -> Sweep | None:
        """``choice(...)`` or ``range(...)`` at the top level, else ``None`` (nothing consumed)."""
        start = self.pos
        name = ""
        while self.peek().isalnum() or self.peek() == "_":
            name += self.peek()
            self.pos += 1
        self.skip_spaces()
        if not name or self.peek() != "(":
            self.pos = start
            return None
        if name not in ("choice", "range"):
            self.pos = start
            raise self.fail(f"unknown function {name}()", "sweeps are choice(a, b) or range(start, stop[, step]); "
                            "quote a value that holds parentheses")
        self.pos += 1
        args = [self.element()]
        self.skip_spaces()
        while self.peek() == ",":
            self.pos += 1
            args.append(self.element())
            self.skip_spaces()
        self.expect(")")
        if name == "choice":
            return ChoiceSweep(tuple(args))
        return self.range(args, start)

    def range(self, args: list[Any], start: int) -> RangeSweep:
        end, self.pos = self.pos, start
        numeric = all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
        if not 2 <= len(args) <= 3 or not numeric:
            raise self.fail("range() takes 2 or 3 numbers", "range(start, stop[, step]), stop excluded")
        sweep = RangeSweep(*args)
        if sweep.step == 0 or not sweep.values():
            raise self.fail(f"{format_value(sweep)} holds no value", "give a step with the sign of stop - start")
        self.pos = end
        return sweep

    def element(self) -> Any:
        self.skip_spaces()
        char = self.peek()
        if char in ("'", '"'):
            return self.quoted(char)
        if char in ("[", "{"):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail(f"more than {MAX_NESTING} nested brackets")
            value = self.list() if char == "[" else self.map()
            self.depth -= 1
            return value
        text = self.primitive()
        if not text:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected a value, found {found}", "write '' for an empty string")
        return _scalar(text)

    def quoted(self, quote: str) -> str:
        opened = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.text[self.pos + 1:self.pos + 2] in (quote, "\\"):
                out.append(self.text[self.pos + 1])
                self.pos += 2
            elif char == quote:
                self.pos += 1
                return "".join(out)
            else:
                out.append(char)
                self.pos += 1
        self.pos = opened
        raise self.fail(f"unclosed quote {quote}", f"close it, or escape a {quote} inside with \\{quote}")

    def primitive(self) -> str:
        """Unquoted text up to the next structural character; ``${...}`` is read whole, braces balanced."""
        start = self.pos
        while self.pos < len(self.text):
            if self.text.startswith("${", self.pos):
                self.reference()
                continue
            if self.text[self.pos] in _STRUCTURE:
                break
            self.pos += 1
        return self.text[start:self.pos].strip()

    def reference(self) -> None:
        opened = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0 and char == "}":
                return
        self.pos = opened
        raise self.fail("unclosed ${", "a reference is ${path.to.key} or ${env:NAME}")

    def list(self) -> list[Any]:
        self.pos += 1
        self.skip_spaces()
        if self.peek() == "]":
            self.pos += 1
            return []
        return list(self.sequence("]"))

    def sequence(self, close: str) -> Iterator[Any]:
        while True:
            yield self.element()
            self.skip_spaces()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == close:
                self.pos += 1
                return
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected ',' or {close!r}, found {found}")

    def map(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        self.skip_spaces()
        if self.peek() == "}":
            self.pos += 1
            return result
        while True:
            self.skip_spaces()
            at = self.pos
            key = self.quoted(self.peek()) if self.peek() in ("'", '"') else self.key()
            if key in result:
                self.pos = at
                raise self.fail(f"duplicate key {key!r}")
            self.expect(":")
            result[key] = self.element()
            self.skip_spaces()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("}")
            return result

    def key(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _STRUCTURE + ":":
            self.pos += 1
        key = self.text[start:self.pos].strip()
        if not key:
            raise self.fail("expected a key")
        return key
