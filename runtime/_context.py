"""What a step's trainer receives: the step, the plan's configuration, and where to write.

This is the one runtime type the family adapters (and users' own entrypoints) depend on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from tkplan.planner._convert import JsonMap, freeze
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._plan import Step

__all__ = ["EPOCH_LOG", "STOP_FILE", "StepContext", "Trainers", "log_epoch", "stop_requested"]

@attrs.frozen
class Trainers:
    """What runs the steps whose family names no ``entrypoint`` of its own; the caller of ``execute`` gives it
    (``tkplan run``: the built-in families' ``tkplan.families:run_step`` and ``tkplan.families:prepare``).

    Attributes:
        run_step: the trainer of such a step, ``module:function``, called with a `StepContext`.
        prepare: ``module:function`` called once, ``fn(config, run_dir)``, before the first such step: the run's
            data is prepared, or refused with a ``DataError``, before any step starts; ``None``: nothing to prepare.

    .. versionadded:: 0.1
    """

    run_step: str
    prepare: str | None = None


EPOCH_LOG = "epochs.jsonl"  # tkplan: ignore[constant]  the step directory's layout
"""A step's progress, in its directory: one JSON line per finished epoch of a network, or every ``log_every``
boosting rounds of a boosted-tree family (`log_epoch`), read while the step runs by the live progress display
and by ``tkplan tune``'s pruner."""


STOP_FILE = "stop"  # tkplan: ignore[constant]  the step directory's layout
"""Written into a running step's directory by ``tkplan tune`` when its trial is pruned: a trainer that checks
it (`stop_requested`) stops training at once and returns, so that its warm worker lives on."""


def stop_requested(out_dir: Path) -> bool:
    """Whether the step in ``out_dir`` was asked to stop training (its trial was pruned)."""
    return (Path(out_dir) / STOP_FILE).exists()


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


def log_epoch(out_dir: Path, epoch: int, epochs: int, **values: Any) -> None:
    """Append epoch ``epoch`` of ``epochs`` with its ``values`` (``val_loss=...``) to ``out_dir/EPOCH_LOG``.

    One ``write`` of one line per epoch, so a reader sees whole lines only.
    """
    line = json.dumps({"epoch": epoch, "epochs": epochs, **values}, sort_keys=True) + "\n"
    fd = os.open(Path(out_dir) / EPOCH_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
