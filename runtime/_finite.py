"""JSON has no NaN or infinity: replace them with ``null`` and say where, so every file a run writes is JSON.

A trainer may return an undefined metric (a rank correlation of a constant prediction is NaN). Python's
``json`` would write it as ``NaN``, which no other JSON reader accepts; `finite` writes ``null`` instead and
lists the keys it changed, which the step's result reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["finite"]


def finite(data: Any, path: str = "") -> tuple[Any, list[str]]:
    """``data`` with every non-finite float (NaN, ±inf) replaced by ``None``, and the dotted paths replaced."""
    if isinstance(data, float):
        return (data, []) if math.isfinite(data) else (None, [path or "(value)"])
    if isinstance(data, Mapping):
        out, where = {}, []
        for key, value in data.items():
            out[key], found = finite(value, f"{path}.{key}" if path else str(key))
            where += found
        return out, where
    if isinstance(data, (list, tuple)):
        items, where = [], []
        for index, value in enumerate(data):
            item, found = finite(value, f"{path}[{index}]")
            items.append(item)
            where += found
        return items, where
    return data, []
