"""`run_step`: the built-in trainer of a step — data, cascade inputs, fit, held-out metrics, saved files.

The executor calls it in the step's process (``tkplan.families:run_step``, the default entrypoint) after
applying the step's environment. It prepares or loads the run's data (`prepare`), looks up the adapter
registered for ``step.family``, fits on the train split (early stopping on validation), predicts every row
of the validation and test splits, scores them, and writes into ``ctx.out_dir``:

- the model, in the library's own format (the adapter's ``model_file``);
- ``predictions.val.npy`` and ``predictions.test.npy``: one float64 per row of the split, in the order of
  the prepared data's ``split.<name>.npy`` row indices (P(y = 1) for a binary target); a multi-target step
  (MultiTask) saves one column per target, in the order of ``step.targets``; under the ``cascade`` strategy
  also ``predictions.train.npy``.

The adapter is the one registered for the step's family and, for a network family, the framework the plan
gave the step (``step.resources.backend``). Metrics of a multi-target
step are per target: ``metrics[split][target]``.

Cascade: a step with ``depends_on`` gets, as extra feature columns named ``pred:<step id>`` (or
``pred:<step id>:<target>`` for each target of a multi-target step), the predictions that each earlier step
saved in ``run_dir/steps/<step id>/`` for the same split rows. The earlier steps'
train-split predictions are in-sample (fitted on those rows), so a later stage sees them more accurate on
train than on validation and test.

Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tkplan._io import atomic_path
from tkplan.errors import DataError
from tkplan.families._adapter import TrainingData, adapter_for
from tkplan.families._data import Dataset, Part, prepare
from tkplan.families._metrics import evaluate
from tkplan.families._splits import SPLIT_NAMES
from tkplan.planner._convert import thaw
from tkplan.planner._plan import split_step_id

if TYPE_CHECKING:
    from tkplan.runtime._context import StepContext

__all__ = ["predictions_file", "run_step"]

_HELD_OUT = ("val", "test")


def predictions_file(split: str) -> str:
    """The file name a step's predictions for ``split`` are saved under."""
    return f"predictions.{split}.npy"


def run_step(ctx: StepContext) -> dict[str, Any]:
    """Train and evaluate the step in ``ctx`` with its family's built-in adapter.

    Returns:
        JSON-ready results: ``metrics`` (``val`` and ``test``: see `tkplan.families._metrics`), ``artifacts``
        (file names in ``ctx.out_dir``), ``threads`` (what the library reports it was told, to compare
        with ``step.resources.threads``), ``fit`` (facts of the fit, e.g. the best iteration), ``data``
        (digest, rows per split, feature names added by a cascade), ``params_unused`` (planned
        hyperparameters the adapter did not pass on; empty for the built-in adapters).

    Raises:
        DataError: the data is unusable, or a cascade input is missing — before any training.
        LookupError: no built-in adapter for the family.
        ValueError: the step asks for what the adapter cannot do (a task, several targets).

    .. versionadded:: 0.1
    """
    step = ctx.step
    config = ctx.config
    adapter = adapter_for(step.family, step.resources.backend)
    if len(step.targets) != 1 and not adapter.multi_target:
        raise ValueError(f"step {step.id}: the {step.family} adapter trains one target, got {', '.join(step.targets)}")
    tasks = tuple(str(config["data"]["tasks"][t]) for t in step.targets)
    if not set(tasks) <= set(adapter.tasks):
        raise ValueError(f"step {step.id}: {step.family} cannot train a {'/'.join(sorted(set(tasks)))} target "
                         f"(it trains {', '.join(adapter.tasks)})")
    dataset = prepare(config, ctx.run_dir)
    parts = {split: _joined([dataset.part(split, target) for target in step.targets]) for split in SPLIT_NAMES}
    names, parts = _with_cascade(ctx, dataset, parts)
    runtime = config["families"][step.family]["runtime"]
    if not runtime["nan_ok"] and any(np.isnan(part.x).any() for part in parts.values()):
        raise DataError(f"step {step.id}: {step.family} cannot take missing feature values (runtime.nan_ok: false) "
                        "and data.nan.features is 'keep'; set it to impute_median or drop_rows")
    out = Path(ctx.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = TrainingData(
        x_train=parts["train"].x, y_train=parts["train"].y, t_train=parts["train"].times,
        x_val=parts["val"].x, y_val=parts["val"].y, t_val=parts["val"].times,
        feature_names=names, task=step.task, s_train=parts["train"].symbols, s_val=parts["val"].symbols,
        n_symbols=dataset.n_symbols, targets=tuple(step.targets), tasks=tasks, work_dir=out,
    )
    cascade = config["campaign"]["strategy"] == "cascade"
    predicted = ("train", *_HELD_OUT) if cascade else _HELD_OUT
    with np.errstate(**dict(config["data"]["safety"]["numpy_errors"])):
        fit = adapter.fit(data, step)
        predictions = {split: np.asarray(adapter.predict(fit.model, parts[split].x, parts[split].times,
                                                         parts[split].symbols), dtype=np.float64)
                       for split in predicted}
        metrics = {split: _scores(step.targets, tasks, parts[split], predictions[split], dataset.cross_sectional)
                   for split in _HELD_OUT}
    artifacts = [adapter.model_file]
    _atomic(out / adapter.model_file, lambda path: adapter.save(fit.model, path))
    for split, values in predictions.items():
        artifacts.append(predictions_file(split))
        _atomic(out / predictions_file(split), lambda path, v=values: np.save(path, v))
    return {
        "metrics": metrics,
        "artifacts": artifacts,
        "threads": dict(fit.threads),
        "fit": thaw(fit.info, _item),
        "data": {"digest": dataset.digest, "rows": {s: len(p.rows) for s, p in parts.items()},
                 "features": len(names), "cascade_features": [n for n in names if n not in dataset.feature_names]},
        "params_unused": sorted(set(step.params) - fit.params_used - set(adapter.planner_keys)),
    }


def _joined(parts: list[Part]) -> Part:
    """One part for several targets of the same rows: ``y`` gets a column per target (kept 1-D for one)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Part(first.x, np.column_stack([p.y for p in parts]), first.times, first.rows, first.symbols)


def _scores(targets: tuple[str, ...], tasks: tuple[str, ...], part: Part, predicted: np.ndarray,
            cross_sectional: bool) -> dict[str, Any]:
    """Held-out metrics: flat for one target, ``{target: metrics}`` for several."""
    if len(targets) == 1:
        return evaluate(tasks[0], part.y, predicted, part.times, cross_sectional=cross_sectional)
    return {target: evaluate(task, part.y[:, i], predicted[:, i], part.times, cross_sectional=cross_sectional)
            for i, (target, task) in enumerate(zip(targets, tasks, strict=True))}


def _with_cascade(ctx: StepContext, dataset: Dataset,
                  parts: Mapping[str, Part]) -> tuple[tuple[str, ...], dict[str, Part]]:
    """Append the predictions of the steps this one depends on as feature columns."""
    names = tuple(dataset.feature_names)
    if not ctx.step.depends_on:
        return names, dict(parts)
    columns: dict[str, list[np.ndarray]] = {split: [] for split in parts}
    added: list[str] = []
    for dep in ctx.step.depends_on:
        for split, part in parts.items():
            path = Path(ctx.run_dir) / "steps" / dep / predictions_file(split)
            if not path.is_file():
                raise DataError(f"step {ctx.step.id} depends on {dep}, but {path} is missing; "
                                f"run {dep} first (with campaign.strategy: cascade)")
            values = np.load(path)
            if values.shape[0] != part.rows.shape[0]:
                raise DataError(f"step {ctx.step.id}: {path} holds {values.shape[0]} predictions but the {split} "
                                f"split has {len(part.rows)} rows; {dep} ran on other data — run it again")
            columns[split].append(values.reshape(len(values), -1).astype(np.float32))
        width = columns["train"][-1].shape[1]
        dep_targets = split_step_id(dep)[1]
        added += [f"pred:{dep}"] if width == 1 else [f"pred:{dep}:{t}" for t in dep_targets]
    names += tuple(added)
    extended = {split: Part(np.column_stack([part.x, *columns[split]]), part.y, part.times, part.rows, part.symbols)
                for split, part in parts.items()}
    return names, extended


def _atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp)`` on a temporary name with the same extension, then rename it to ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)


def _item(value: Any) -> Any:
    """A numpy scalar as the Python number it holds."""
    return value.item() if isinstance(value, np.generic) else value
