"""tkplan: compile an ML training campaign's configuration into one validated, hashed plan, and run it.

The public API is re-exported here lazily, so that ``import tkplan`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'tkplan' has no attribute {name!r}")
