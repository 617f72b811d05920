"""The training loop every PyTorch network family shares; each setting comes from the step.

One epoch: shuffled mini-batches (seeded), the batch's loss with AMP at the planned precision on a GPU,
backward, gradient clipping (``training.grad_clip_norm``), an optimizer step (AdamW or Adam with
``training.optimizer.weight_decay``); then the validation loss, the learning-rate schedule
(``training.lr_scheduler``: ReduceLROnPlateau with its patience, factor and min lr, or cosine annealing down
to min lr over ``epochs``), a checkpoint of the best epoch (``training.checkpoint_best``), and early stopping
after ``patience`` epochs without an improvement of at least ``training.early_stopping.min_delta``, restoring
the best weights (``restore_best_weights``). ``training.compile`` wraps the network in ``torch.compile``.

Losses (`target_loss`): MSE or Huber for regression targets (``training.regression_loss``), focal loss or
class-weighted BCE on logits for binary ones (``training.binary_loss``); a multi-target step sums each
target's loss times its weight. The validation loss early stopping watches is that target loss alone.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tkplan._io import atomic_path
from tkplan.runtime._context import log_epoch

__all__ = ["Inputs", "LoopResult", "LoopSettings", "StepTools", "autocast", "fit_loop", "predict", "target_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
TrainBatch = Callable[[nn.Module, Batch, LossFn, "StepTools"], torch.Tensor]
"""A training step: updates the network on one batch and returns the batch's target loss."""

_PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


@attrs.frozen
class LoopSettings:
    """What the loop needs: the family's epochs, batch, learning rate and patience, and the plan's rest.

    Attributes:
        epochs: most epochs.
        batch_size: rows per mini-batch.
        learning_rate: the optimizer's initial learning rate.
        patience: epochs without improvement before early stopping.
        training: the step's ``training`` params (the plan's shared loop settings).
        device: ``cpu``, ``cuda`` or ``mps`` (``step.resources.device``).
        precision: ``fp32``, ``bf16`` or ``fp16`` (``step.resources.precision``); AMP only on ``cuda``.
        seed: the step's seed.
        checkpoint: where to save the best epoch's weights, or ``None``.
        progress: the step directory, where each epoch is logged for the live display (`log_epoch`), or ``None``.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    training: Mapping[str, Any]
    device: str
    precision: str
    seed: int
    checkpoint: Path | None = None
    progress: Path | None = None


@attrs.frozen
class LoopResult:
    """What the loop did: epochs and batches run, the best epoch and its validation loss, time per epoch, GPU peak."""

    epochs_run: int
    batches_per_epoch: int
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    epoch_seconds: tuple[float, ...]
    val_losses: tuple[float, ...]
    final_lr: float
    compiled: bool
    cuda_peak_mb: float | None

    def info(self) -> dict[str, Any]:
        """JSON-ready facts for the step's result."""
        seconds = self.epoch_seconds[1:] or self.epoch_seconds  # the first epoch also compiles and warms up
        return {"epochs_run": self.epochs_run, "batches_per_epoch": self.batches_per_epoch,
                "best_epoch": self.best_epoch,
                "best_val_loss": round(self.best_val_loss, 6), "stopped_early": self.stopped_early,
                "seconds_per_epoch": round(float(np.median(seconds)), 4) if seconds else None,
                "first_epoch_s": round(self.epoch_seconds[0], 4) if self.epoch_seconds else None,
                "final_lr": self.final_lr, "compiled": self.compiled, "cuda_peak_mb": self.cuda_peak_mb,
                "curves": {"val_loss": [round(v, 6) for v in self.val_losses],
                           "epoch_s": [round(s, 4) for s in self.epoch_seconds]}}


class StepTools:
    """What a training step uses: the optimizer, mixed precision and the clipped, scaled update.

    Attributes:
        optimizer: the loop's optimizer (of the parameters given to `fit_loop`).
        settings: the loop's settings.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, settings: LoopSettings,
                 forward: Callable[..., torch.Tensor]) -> None:
        self.optimizer = optimizer
        self.settings = settings
        self.forward = forward
        self.scaler = torch.amp.GradScaler("cuda", enabled=settings.device == "cuda" and settings.precision == "fp16")
        clip = settings.training["grad_clip_norm"]
        self.clip_norm = None if clip is None else float(clip)

    def autocast(self) -> Any:
        """Mixed precision at the planned precision (`autocast`)."""
        return autocast(self.settings.device, self.settings.precision)

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: Iterable[nn.Parameter]) -> None:
        """Backward ``loss`` (scaled under fp16), clip the gradients of ``parameters``, step ``optimizer``."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.step(optimizer, parameters)

    def step(self, optimizer: torch.optim.Optimizer, parameters: Iterable[nn.Parameter]) -> None:
        """Clip the gradients already computed and step ``optimizer``; then update the fp16 loss scale."""
        if self.clip_norm is not None:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(list(parameters), self.clip_norm)
        self.scaler.step(optimizer)
        self.scaler.update()


def default_step(net: nn.Module, batch: Batch, loss: LossFn, tools: StepTools) -> torch.Tensor:
    """Forward, target loss (plus the network's ``aux_loss()`` when it has one), backward, clip, step."""
    x, s, y = batch
    with tools.autocast():
        value = loss(tools.forward(x, s), y)
        aux_loss = getattr(net, "aux_loss", None)
        total = value + aux_loss() if aux_loss is not None else value
    tools.update(total, tools.optimizer, net.parameters())
    return value.detach()


class Inputs:
    """One split's rows on the device, gathered batch by batch (windows from `window_index` when given).

    Args:
        padded: standardised features with one zero row appended (`Standardiser.padded`).
        index: the lookback window of each row (`window_index`), or ``None`` for tabular rows.
        symbols: the symbol id of each row.
        y: the target(s) of each row, or ``None`` when only predicting.
        device: where the tensors live.
    """

    def __init__(self, padded: np.ndarray, index: np.ndarray | None, symbols: np.ndarray, y: np.ndarray | None,
                 device: torch.device) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(padded)).to(device)
        self.index = None if index is None else torch.from_numpy(index).to(device)
        self.rows = len(symbols)
        self.symbols = torch.from_numpy(np.asarray(symbols, dtype=np.int64)).to(device)
        y2 = None if y is None else np.asarray(y, dtype=np.float32).reshape(self.rows, -1)
        self.y = None if y2 is None else torch.from_numpy(y2).to(device)

    def __len__(self) -> int:
        return self.rows

    def take(self, rows: torch.Tensor) -> Batch:
        """The batch of ``rows``: features (or windows), symbol ids, targets (empty when unknown)."""
        x = self.x[rows] if self.index is None else self.x[self.index[rows]]
        y = self.y[rows] if self.y is not None else torch.empty(0, device=self.x.device)
        return x, self.symbols[rows], y

    def batches(self, size: int, generator: torch.Generator | None = None) -> Iterable[Batch]:
        """Mini-batches in a random order (``generator``) or in row order (``None``)."""
        order = torch.randperm(self.rows, generator=generator) if generator is not None else torch.arange(self.rows)
        order = order.to(self.x.device)
        for start in range(0, self.rows, size):
            yield self.take(order[start:start + size])


def autocast(device: str, precision: str) -> Any:
    """Mixed precision for a CUDA step planned at bf16 or fp16; full precision otherwise."""
    if device == "cuda" and precision in _PRECISIONS:
        return torch.autocast(device_type="cuda", dtype=_PRECISIONS[precision])
    return torch.autocast(device_type="cpu", enabled=False)


def target_loss(tasks: Sequence[str], training: Mapping[str, Any], y_train: np.ndarray,
                weights: Sequence[float] | None = None) -> LossFn:
    """The loss of raw outputs (batch, targets) against targets (batch, targets), per ``training``.

    Args:
        tasks: each target's task, in column order.
        training: the step's ``training`` params.
        y_train: the train targets (class weights of ``weighted_bce`` come from them).
        weights: each target's loss weight (all 1 when ``None``).
    """
    y2 = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    each = [_one_loss(task, training, y2[:, i]) for i, task in enumerate(tasks)]
    factors = list(weights) if weights is not None else [1.0] * len(tasks)

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = out.float()
        terms = [w * fn(out[:, i], y[:, i]) for i, (w, fn) in enumerate(zip(factors, each, strict=True))]
        return torch.stack(terms).sum()

    return loss


def _one_loss(task: str, training: Mapping[str, Any], y: np.ndarray) -> LossFn:
    if task == "regression":
        return F.huber_loss if training["regression_loss"] == "huber" else F.mse_loss
    spec = training["binary_loss"]
    if spec["name"] == "focal":
        gamma, alpha = float(spec["gamma"]), float(spec["alpha"])

        def focal(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            p_true = torch.exp(-bce)
            weight = alpha * target + (1 - alpha) * (1 - target)
            return torch.mean(weight * (1 - p_true) ** gamma * bce)

        return focal
    positives = float(y.sum())
    pos_weight = torch.tensor((len(y) - positives) / max(positives, 1.0))

    def weighted_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight.to(logits.device))

    return weighted_bce


def fit_loop(model: nn.Module, train: Inputs, val: Inputs, loss_fn: LossFn, settings: LoopSettings,
             parameters: Iterable[nn.Parameter] | None = None, train_batch: TrainBatch | None = None) -> LoopResult:
    """Train ``model`` in place with the shared loop; on return it holds the best epoch's weights.

    Args:
        model: the network, already on the device.
        train: the train rows.
        val: the validation rows (early stopping, the plateau schedule).
        loss_fn: the target loss (`target_loss`).
        settings: epochs, batch, learning rate, patience and the plan's loop settings.
        parameters: what the optimizer updates (all of ``model``'s parameters when ``None``).
        train_batch: a custom step for one batch (GAN, meta-learning) instead of `default_step`; it is not
            compiled (``training.compile`` applies to the default step).
    """
    t = settings.training
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = _optimizer(parameters if parameters is not None else model.parameters(), settings)
    scheduler = _scheduler(optimizer, settings)
    compiled = bool(t["compile"]) and train_batch is None
    forward = torch.compile(model) if compiled else model
    tools = StepTools(optimizer, settings, forward)
    cuda = settings.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    step = train_batch or default_step
    stopping = t["early_stopping"]
    min_delta, restore = float(stopping["min_delta"]), bool(stopping["restore_best_weights"])
    best, best_epoch, best_state, waited = float("inf"), 0, None, 0
    seconds: list[float] = []
    losses: list[float] = []
    epoch = batches = 0
    for epoch in range(1, settings.epochs + 1):
        start = time.perf_counter()
        model.train()
        batches = 0
        for batch in train.batches(settings.batch_size, generator):
            step(model, batch, loss_fn, tools)
            batches += 1
        val_loss = _mean_loss(forward, model, val, loss_fn, settings)
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        if not np.isfinite(val_loss):
            raise FloatingPointError(f"the validation loss is {val_loss} at epoch {epoch}; lower the learning rate "
                                     "or set training.grad_clip_norm")
        losses.append(float(val_loss))
        if settings.progress is not None:
            log_epoch(settings.progress, epoch, settings.epochs, val_loss=round(float(val_loss), 6),
                      epoch_s=round(seconds[-1], 4))
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        else:
            scheduler.step()
        if val_loss < best - min_delta:
            best, best_epoch, waited = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            if settings.checkpoint is not None:
                _save_checkpoint(settings.checkpoint, model, epoch, val_loss)
        else:
            waited += 1
            if waited >= settings.patience:
                break
    if restore and best_state is not None:
        model.load_state_dict(best_state)
    return LoopResult(
        epochs_run=epoch, batches_per_epoch=batches, best_epoch=best_epoch, best_val_loss=best,
        stopped_early=epoch < settings.epochs,
        epoch_seconds=tuple(seconds), val_losses=tuple(losses), final_lr=float(optimizer.param_groups[0]["lr"]),
        compiled=compiled,
        cuda_peak_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None)


def predict(model: nn.Module, inputs: Inputs, settings: LoopSettings) -> np.ndarray:
    """Raw outputs (rows, targets) of ``model`` in evaluation mode, float32."""
    model.eval()
    chunks = []
    with torch.no_grad(), autocast(settings.device, settings.precision):
        for x, s, _ in inputs.batches(settings.batch_size):
            chunks.append(model(x, s).float().cpu())
    return torch.cat(chunks).numpy() if chunks else np.empty((0, 1), dtype=np.float32)


def _mean_loss(forward: Callable[..., torch.Tensor], model: nn.Module, inputs: Inputs, loss_fn: LossFn,
               settings: LoopSettings) -> float:
    model.eval()
    total, rows = 0.0, 0
    with torch.no_grad(), autocast(settings.device, settings.precision):
        for x, s, y in inputs.batches(settings.batch_size):
            total += float(loss_fn(forward(x, s), y)) * len(y)
            rows += len(y)
    return total / max(rows, 1)


def _optimizer(parameters: Iterable[nn.Parameter], settings: LoopSettings) -> torch.optim.Optimizer:
    spec = settings.training["optimizer"]
    kind = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[spec["name"]]
    return kind(parameters, lr=settings.learning_rate, weight_decay=float(spec["weight_decay"]))


def _scheduler(optimizer: torch.optim.Optimizer, settings: LoopSettings) -> Any:
    spec = settings.training["lr_scheduler"]
    if spec["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs,
                                                          eta_min=float(spec["min_lr"]))
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, patience=int(spec["patience"]), factor=float(spec["factor"]), min_lr=float(spec["min_lr"]),
        mode="min")  # tkplan: ignore[constructor_kwarg] -- the validation loss improves downwards


def _save_checkpoint(path: Path, model: nn.Module, epoch: int, val_loss: float) -> None:
    """Write the best epoch's weights to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"epoch": epoch, "val_loss": val_loss, "state_dict": model.state_dict()}, tmp)
