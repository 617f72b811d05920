"""The built-in families as the default trainer: what ``tkplan run``, ``tkplan demo`` and `tkplan.execute` give
the executor for the steps whose family names no ``entrypoint`` of its own.

The runtime names no family: its ``execute`` runs such steps with the `Trainers` its caller gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tkplan.planner import Plan
    from tkplan.runtime import RunSummary, Trainers

__all__ = ["FAMILY_TRAINERS", "execute", "family_trainers"]

FAMILY_TRAINERS = ("tkplan.families:run_step", "tkplan.families:prepare")
"""The trainer and the data preparation of the built-in families (``module:function``)."""


def family_trainers() -> Trainers:
    """`FAMILY_TRAINERS` as the runtime's `Trainers`."""
    from tkplan.runtime import Trainers

    return Trainers(*FAMILY_TRAINERS)


def execute(plan: Plan, run_dir: Path, **options: Any) -> RunSummary:
    """Run ``plan`` in ``run_dir``: ``tkplan.runtime.execute``, whose options it takes, with the built-in
    families' trainer for the steps that name no entrypoint (unless ``trainers`` gives another).

    .. versionadded:: 0.1
    """
    from tkplan.runtime import execute as run

    options.setdefault("trainers", family_trainers())
    return run(plan, run_dir, **options)
