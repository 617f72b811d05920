"""Plain text tables for the terminal: left-aligned columns, two spaces apart. Shared by every layer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["aligned", "table"]


def aligned(rows: Iterable[Sequence[Any]]) -> list[str]:
    """``rows`` as lines of left-aligned columns two spaces apart, each line's trailing space dropped."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))] if cells else []
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain aligned text table: the headers, a rule of dashes, the rows."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    return "\n".join(aligned([headers, ["-" * w for w in widths], *rows]))
