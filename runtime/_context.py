"""What a step's trainer receives: the step, the plan's configuration, and where to write.

This is the one runtime type the family adapters (and users' own entrypoints) depend on.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from tkplan.planner._convert import JsonMap, freeze
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._plan import Step

__all__ = ["DEFAULT_ENTRYPOINT", "DEFAULT_PREPARE", "StepContext"]

DEFAULT_ENTRYPOINT = "tkplan.families:run_step"  # tkplan: ignore[constant]  the trainers' contract
"""What runs a step whose family has no ``entrypoint`` of its own: the built-in adapters' dispatcher."""

DEFAULT_PREPARE = "tkplan.families:prepare"  # tkplan: ignore[constant]  the trainers' contract
"""What the executor calls once, ``fn(config, run_dir)``, before the first step that uses `DEFAULT_ENTRYPOINT`:
the run's data is prepared, or refused with a ``DataError``, before any step starts."""


@attrs.frozen
class StepContext:
    """Everything a trainer may use; a trainer reads no environment variable and no file of its own.

    Attributes:
        step: the plan's step: family, targets, seed, params, resources, limits.
        config: the plan's resolved configuration (the ``data`` and ``training`` sections, among others).
        hardware: the machine the plan was compiled for.
        run_dir: the run directory (shared by all steps; prepared data lives under ``run_dir/data``).
        out_dir: this step's directory (``run_dir/steps/<id>``): write the model, predictions, metrics here.

    A trainer is ``fn(ctx: StepContext) -> Mapping`` returning JSON-ready results, at least
    ``{"metrics": {...}}``.
    """

    step: Step
    config: JsonMap = attrs.field(converter=freeze)
    hardware: HardwareSpec
    run_dir: Path
    out_dir: Path
