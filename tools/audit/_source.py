"""Python source text: decode it as the interpreter would, and read its ``# tkplan: ignore`` comments."""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator

from ._findings import KINDS

__all__ = ["LINE_BREAK", "decode_source", "parse_ignores", "recursion_limit"]

_IGNORE = re.compile(r"#\s*tkplan:\s*ignore\b(?:\[([^\]]*)\])?")
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_ignores(lines: Iterable[tuple[int, str]]) -> tuple[dict[int, frozenset[str] | None], list[str]]:
    """Read ``# tkplan: ignore[kind, ...]`` comments from ``(line number, text)`` pairs.

    Returns:
        line → the kinds silenced there (``None``: all kinds), and the unknown kind names met, as
        ``"line N: unknown kind 'x'"`` notes.
    """
    ignores: dict[int, frozenset[str] | None] = {}
    notes: list[str] = []
    for number, text in lines:
        match = _IGNORE.search(text) if "tkplan:" in text else None
        if match is None:
            continue
        if match.group(1) is None:
            ignores[number] = None
            continue
        kinds = frozenset(k.strip() for k in match.group(1).split(",") if k.strip())
        for kind in sorted(kinds - set(KINDS)):
            notes.append(f"line {number}: unknown kind {kind!r} in a tkplan: ignore comment")
        ignores[number] = kinds
    return ignores, notes


@contextlib.contextmanager
def recursion_limit(limit: int) -> Iterator[None]:
    """Raise the interpreter's recursion limit to at least ``limit`` for a block, then restore it."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def decode_source(data: bytes) -> tuple[str, str]:
    """Decode Python source as the interpreter would; returns (text, skip reason)."""
    encoding = "utf-8"
    if data.startswith(codecs.BOM_UTF8) or b"coding" in data[:512]:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as exc:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as bad:
                return "", f"not valid UTF-8 text (byte {bad.start}); declare the encoding or re-save as UTF-8"
            return "", f"bad encoding declaration: {exc}"
    try:
        return data.decode(encoding), ""
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding
        return "", f"not valid {name} text (byte {exc.start}); declare the encoding or re-save as UTF-8"

