"""The eleven network families on PyTorch: MLP, CNN1D, LSTM, Transformer, TabCNN, TabLSTM, TabTransformer,
VAE, GAN, MetaLearning and MultiTask.

Each adapter builds its network from the step's params (`tkplan.families._torch_nets`) and trains it with
the shared loop (`tkplan.families._torch_loop`) on the step's device and precision, with torch's threads
as the step's child set them from the plan (``resources.pools``; an adapter only reads them). Features are
standardised on the train split; a regression target is standardised for training and predicted on its own
scale; a binary target is predicted as P(y = 1). Sequence families (CNN1D, LSTM, Transformer) read each
row's per-symbol lookback window of ``lookback`` rows (`tkplan.families._nn_data`); the Tab* families read
one row's feature vector as a sequence over features.

How the generative and meta families predict the target:

- VAE: a head on the latent mean predicts the target; training adds the KL term (``beta``) and the
  features' reconstruction (``reconstruction_weight``) to the target loss.
- GAN: a generator produces the target from the features and noise, trained on the target loss plus
  ``adversarial_weight`` × the loss of fooling a discriminator of (features, target) pairs; it predicts
  with zero noise.
- MetaLearning: first-order MAML over symbols. Each batch is split into one task per symbol (half support,
  half query); the weights are adapted with ``inner_steps`` SGD steps of ``inner_learning_rate`` on the
  support rows and updated from the adapted weights' query loss. To predict a symbol's rows it adapts the
  learned weights on that symbol's latest ``support_rows`` train rows first.
- MultiTask: a shared trunk with a head per target, trained on the sum of the targets' losses, each times
  its ``loss_weights`` entry (1 when absent).

The model is saved with ``torch.save``: the network's ``state_dict``, its class and constructor arguments,
and the scaling of features and targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from tkplan.families._adapter import FamilyAdapter, FitResult, Params, TrainingData
from tkplan.families._nn_data import Standardiser, Targets, symbol_ids, window_index

if TYPE_CHECKING:
    from torch import nn

    from tkplan.families._torch_loop import Inputs, LoopSettings, StepTools
    from tkplan.planner._plan import Step

__all__ = [
    "CNN1DAdapter", "GANAdapter", "LSTMAdapter", "MLPAdapter", "MetaLearningAdapter", "MultiTaskAdapter",
    "TabCNNAdapter", "TabLSTMAdapter", "TabTransformerAdapter", "TorchAdapter", "TorchModel", "TransformerAdapter",
    "VAEAdapter",
]

_CHECKPOINT = "checkpoint.best.pt"  # tkplan: ignore[constant]  a file name, not a setting


@attrs.define(eq=False)
class TorchModel:
    """A trained network and what turns rows into its inputs and its outputs into predictions.

    Attributes:
        net: the network (on the step's device).
        architecture: the network's class name and constructor arguments.
        features: the train split's feature scaling.
        targets: how each target is scaled and predicted.
        lookback: the window length of a sequence family, or ``None``.
        settings: the loop settings (device, precision, batch size for prediction).
    """

    net: Any
    architecture: dict[str, Any]
    features: Standardiser
    targets: Targets
    lookback: int | None
    settings: Any

    def inputs(self, x: np.ndarray, times: np.ndarray, symbols: np.ndarray, y: np.ndarray | None = None) -> Inputs:
        """The rows as network inputs on the model's device (standardised, windowed when sequential)."""
        import torch

        from tkplan.families._torch_loop import Inputs

        index = None if self.lookback is None else window_index(symbols, times, self.lookback)
        scaled = None if y is None else self.targets.scaled(y)
        return Inputs(self.features.padded(x), index, symbols, scaled, torch.device(self.settings.device))

    def raw(self, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """The network's raw outputs (rows, targets)."""
        from tkplan.families._torch_loop import predict

        return predict(self.net, self.inputs(x, times, symbols), self.settings)

    def predict(self, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """Predictions on the targets' scale: values, or P(y = 1); 1-D for one target."""
        return self.targets.predictions(self.raw(x, times, symbols))

    def payload(self) -> dict[str, Any]:
        """What `TorchAdapter.save` writes."""
        return {"architecture": self.architecture, "state_dict": self.net.state_dict(),
                "features": {"mean": self.features.mean, "scale": self.features.scale},
                "targets": {"tasks": list(self.targets.tasks), "mean": self.targets.mean, "scale": self.targets.scale},
                "lookback": self.lookback}


class TorchAdapter(FamilyAdapter):
    """The common fit of the PyTorch families; a subclass says which network and which hyperparameters.

    Attributes:
        network: the class name in `tkplan.families._torch_nets`.
        hyperparameters: profile keys passed to the network's constructor under the same name.
        learning_rate_key: the profile key of the optimizer's learning rate.
    """

    tasks = ("regression", "binary")
    library = "torch"
    backend = "torch"
    model_file = "model.pt"
    network: str
    hyperparameters: tuple[str, ...] = ()
    learning_rate_key = "learning_rate"

    @property
    def sequential(self) -> bool:
        """Whether the network reads lookback windows."""
        from tkplan.families import _torch_nets

        return getattr(_torch_nets, self.network) in _torch_nets.SEQUENCE_NETS

    def arguments(self, p: Params, data: TrainingData) -> dict[str, Any]:
        """The network's constructor arguments beyond ``features`` and ``outputs``."""
        return {key: p[key] for key in self.hyperparameters}

    def loss_weights(self, p: Params, data: TrainingData) -> list[float] | None:
        """Each target's loss weight (``None``: all 1)."""
        return None

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        import torch

        from tkplan.families import _torch_nets
        from tkplan.families._torch_loop import LoopSettings, fit_loop, target_loss

        p = Params(step)
        torch.manual_seed(step.seed)
        training = p["training"]
        tasks = data.tasks or (data.task,)
        targets = Targets.fit(data.y_train, tasks)
        checkpoint = data.work_dir / _CHECKPOINT if training["checkpoint_best"] and data.work_dir else None
        settings = LoopSettings(epochs=p["epochs"], batch_size=p["batch_size"], learning_rate=p[self.learning_rate_key],
                                patience=p["patience"], training=training, device=step.resources.device,
                                precision=step.resources.precision, seed=step.seed, checkpoint=checkpoint,
                                progress=data.work_dir)
        arguments = {"features": data.x_train.shape[1], "outputs": len(tasks), **self.arguments(p, data)}
        net = getattr(_torch_nets, self.network)(**arguments).to(torch.device(settings.device))
        model = self.model(TorchModel(net, {"network": self.network, "arguments": arguments},
                                      Standardiser.fit(data.x_train), targets,
                                      p["lookback"] if self.sequential else None, settings), p, data)
        train = model.inputs(data.x_train, data.t_train, symbol_ids(data.s_train, len(data.x_train)), data.y_train)
        val = model.inputs(data.x_val, data.t_val, symbol_ids(data.s_val, len(data.x_val)), data.y_val)
        loss = target_loss(tasks, training, targets.scaled(data.y_train), self.loss_weights(p, data))
        result = fit_loop(net, train, val, loss, settings, **self.loop_options(p, net, settings, tuple(tasks)))
        info = {**result.info(), "device": settings.device, "precision": settings.precision,
                "batch_size": settings.batch_size, "lookback": model.lookback, "network": self.network,
                "parameters": int(sum(w.numel() for w in net.parameters())), "vram_cap_mb": step.limits.vram_cap_mb,
                "checkpoint": _CHECKPOINT if checkpoint else None}
        return FitResult(model=model, threads={"torch.num_threads": torch.get_num_threads()}, params_used=p.used,
                         info=info)

    def loop_options(self, p: Params, net: nn.Module, settings: LoopSettings, tasks: tuple[str, ...]) -> dict[str, Any]:
        """Extra arguments of `fit_loop` (the optimised parameters, a custom step)."""
        return {}

    def model(self, model: TorchModel, p: Params, data: TrainingData) -> TorchModel:
        """The model object `predict` will use (a subclass may keep more, e.g. support rows)."""
        return model

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        return model.predict(x, times, symbol_ids(symbols, len(x)))

    def save(self, model: Any, path: Path) -> None:
        import torch

        torch.save(model.payload(), path)


class _Embedded(TorchAdapter):
    """A network with seed 002's learned asset embedding (``asset_embedding_dim``, 0 = none)."""

    def arguments(self, p: Params, data: TrainingData) -> dict[str, Any]:
        return {**super().arguments(p, data), "n_symbols": data.n_symbols,
                "asset_embedding_dim": p["asset_embedding_dim"]}


class MLPAdapter(_Embedded):
    """MLP: feed-forward layers (``hidden_layers``, ``batch_norm``, ``dropout``) on one row's features."""

    family = "mlp"
    network = "MLP"
    hyperparameters = ("hidden_layers", "dropout", "batch_norm")


class CNN1DAdapter(_Embedded):
    """CNN1D: convolutions over time of each row's lookback window (``filters``, ``kernel_size``)."""

    family = "cnn1d"
    network = "CNN1D"
    hyperparameters = ("filters", "kernel_size", "dropout")


class TabCNNAdapter(CNN1DAdapter):
    """TabCNN: CNN1D's convolutions over one row's feature vector."""

    family = "tab_cnn"
    network = "TabCNN"


class LSTMAdapter(_Embedded):
    """LSTM: an LSTM or GRU over the lookback window, with optional attention and convolutional front."""

    family = "lstm"
    network = "LSTM"
    hyperparameters = ("lstm_units", "lstm_layers", "cell", "attention", "attention_heads", "dropout",
                       "recurrent_dropout", "conv_layers", "conv_filters", "kernel_size")


class TabLSTMAdapter(LSTMAdapter):
    """TabLSTM: the LSTM over one row's feature vector."""

    family = "tab_lstm"
    network = "TabLSTM"


class TransformerAdapter(_Embedded):
    """Transformer: attention across features, each feature's token built from its lookback window.

    ``seq_batch_threshold`` and ``seq_batch_floor`` are the planner's: its batch scaling already gave the
    step's ``batch_size``.
    """

    family = "transformer"
    network = "Transformer"
    hyperparameters = ("d_model", "heads", "ff_dim", "num_layers", "dropout")
    planner_keys = ("seq_batch_threshold", "seq_batch_floor")

    def arguments(self, p: Params, data: TrainingData) -> dict[str, Any]:
        return {**super().arguments(p, data), "lookback": p["lookback"]}


class TabTransformerAdapter(_Embedded):
    """TabTransformer: attention across the features of one row, each token one feature's value."""

    family = "tab_transformer"
    network = "TabTransformer"
    hyperparameters = TransformerAdapter.hyperparameters
    planner_keys = TransformerAdapter.planner_keys


class VAEAdapter(TorchAdapter):
    """VAE: the target predicted from the latent mean of a variational autoencoder of the features."""

    family = "vae"
    network = "VAE"
    hyperparameters = ("hidden_dim", "latent_dim", "dropout", "beta", "reconstruction_weight")

    def arguments(self, p: Params, data: TrainingData) -> dict[str, Any]:
        return {**super().arguments(p, data), "exp_bounds": list(p["training"]["exp_bounds"])}


class GANAdapter(TorchAdapter):
    """GAN: a conditional generator of the target, trained against a discriminator and on the target loss."""

    family = "gan"
    network = "GAN"
    hyperparameters = ("generator_hidden_dim", "discriminator_hidden_dim", "noise_dim", "dropout")
    learning_rate_key = "learning_rate_generator"

    def loop_options(self, p: Params, net: nn.Module, settings: LoopSettings, tasks: tuple[str, ...]) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        from tkplan.families._torch_loop import Batch, LossFn
        from tkplan.families._torch_nets import GAN

        if not isinstance(net, GAN):
            raise TypeError(f"the GAN adapter trains a GAN network, not {type(net).__name__}")
        gan = net

        discriminator = torch.optim.AdamW(gan.discriminator.parameters(), lr=p["learning_rate_discriminator"],
                                          weight_decay=float(settings.training["optimizer"]["weight_decay"]))
        weight = float(p["adversarial_weight"])
        binary = torch.tensor([t == "binary" for t in tasks], device=settings.device)

        def as_values(out: torch.Tensor) -> torch.Tensor:
            return torch.where(binary, torch.sigmoid(out), out)

        def judged(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
            return gan.discriminator(torch.cat([x, values], dim=1))

        def adversarial_step(model: nn.Module, batch: Batch, loss: LossFn, tools: StepTools) -> torch.Tensor:
            x, _, y = batch
            with tools.autocast():
                fake = as_values(gan.generate(x, torch.randn(len(x), gan.noise_dim, device=x.device)))
                real_score, fake_score = judged(x, y), judged(x, fake.detach())
                d_loss = (F.binary_cross_entropy_with_logits(real_score, torch.ones_like(real_score))
                          + F.binary_cross_entropy_with_logits(fake_score, torch.zeros_like(fake_score)))
            tools.update(d_loss, discriminator, gan.discriminator.parameters())
            with tools.autocast():
                out = gan.generate(x, torch.randn(len(x), gan.noise_dim, device=x.device))
                value = loss(out, y)
                score = judged(x, as_values(out))
                fooled = F.binary_cross_entropy_with_logits(score, torch.ones_like(score))
            tools.update(value + weight * fooled, tools.optimizer, gan.generator.parameters())
            return value.detach()

        return {"parameters": gan.generator.parameters(), "train_batch": adversarial_step}


class MetaLearningAdapter(TorchAdapter):
    """MetaLearning: first-order MAML over symbols; predictions adapt to each symbol's latest train rows."""

    family = "meta_learning"
    network = "MLP"

    def arguments(self, p: Params, data: TrainingData) -> dict[str, Any]:
        return {"hidden_layers": [p["hidden_dim"], p["hidden_dim"]], "dropout": p["dropout"], "batch_norm": False,
                "n_symbols": data.n_symbols, "asset_embedding_dim": 0}

    def loop_options(self, p: Params, net: nn.Module, settings: LoopSettings, tasks: tuple[str, ...]) -> dict[str, Any]:
        adapt = _Adaptation.of(p)

        def meta_step(model: nn.Module, batch: Any, loss: Any, tools: StepTools) -> Any:
            import torch

            x, s, y = batch
            tasks = [rows for rows in (torch.nonzero(s == symbol).squeeze(1) for symbol in torch.unique(s))
                     if len(rows) > 1]  # a task needs a support row and a query row
            tools.optimizer.zero_grad(set_to_none=True)
            total = torch.zeros((), device=x.device)
            for rows in tasks:
                support, query = rows[: len(rows) // 2], rows[len(rows) // 2:]
                with tools.autocast():
                    fast = adapt.weights(model, loss, x[support], s[support], y[support])
                    value = loss(torch.func.functional_call(model, fast, (x[query], s[query])), y[query]) / len(tasks)
                tools.scaler.scale(value).backward()
                total += value.detach()
            if tasks:
                tools.step(tools.optimizer, model.parameters())
            return total

        return {"train_batch": meta_step}

    def model(self, model: TorchModel, p: Params, data: TrainingData) -> TorchModel:
        return _MetaModel(model.net, model.architecture, model.features, model.targets, model.lookback,
                          model.settings, support=_latest_rows(data, int(p["support_rows"])),
                          adaptation=_Adaptation.of(p))


@attrs.frozen
class _Adaptation:
    """``steps`` plain gradient steps of size ``learning_rate`` from the network's weights (first order)."""

    steps: int
    learning_rate: float

    @classmethod
    def of(cls, p: Params) -> _Adaptation:
        """The family's ``inner_steps`` and ``inner_learning_rate``."""
        return cls(int(p["inner_steps"]), float(p["inner_learning_rate"]))

    def weights(self, net: Any, loss: Any, x: Any, s: Any, y: Any) -> dict[str, Any]:
        import torch

        fast = dict(net.named_parameters())
        for _ in range(self.steps):
            value = loss(torch.func.functional_call(net, fast, (x, s)), y)
            grads = torch.autograd.grad(value, list(fast.values()), allow_unused=True)
            fast = {name: w if g is None else w - self.learning_rate * g.detach()
                    for (name, w), g in zip(fast.items(), grads, strict=True)}
        return fast


def _latest_rows(data: TrainingData, rows: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per symbol id, the features and targets of its latest ``rows`` train rows."""
    symbols = symbol_ids(data.s_train, len(data.x_train))
    support = {}
    for symbol in np.unique(symbols):
        mine = np.flatnonzero(symbols == symbol)
        mine = mine[np.argsort(data.t_train[mine], kind="stable")][-rows:]
        support[int(symbol)] = (data.x_train[mine], np.asarray(data.y_train)[mine])
    return support


@attrs.define(eq=False)
class _MetaModel(TorchModel):
    """A meta-learned network that adapts to each symbol's support rows before predicting its rows."""

    support: Mapping[int, tuple[np.ndarray, np.ndarray]] = attrs.field(factory=dict)
    adaptation: _Adaptation | None = None

    def raw(self, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        import torch

        from tkplan.families._torch_loop import autocast, target_loss

        self.net.eval()
        out = super().raw(x, times, symbols)
        training = self.settings.training
        for symbol in np.unique(symbols):
            if int(symbol) not in self.support or self.adaptation is None:
                continue
            sx, sy = self.support[int(symbol)]
            shot = self.inputs(sx, np.arange(len(sx)), np.full(len(sx), symbol), sy)
            loss = target_loss(self.targets.tasks, training, self.targets.scaled(sy))
            rows = np.flatnonzero(symbols == symbol)
            mine = self.inputs(x[rows], times[rows], symbols[rows])
            every = torch.arange(len(shot), device=shot.x.device)
            with autocast(self.settings.device, self.settings.precision):
                fast = self.adaptation.weights(self.net, loss, *shot.take(every))
                with torch.no_grad():
                    xr, sr, _ = mine.take(torch.arange(len(mine), device=mine.x.device))
                    out[rows] = torch.func.functional_call(self.net, fast, (xr, sr)).float().cpu().numpy()
        return out


class MultiTaskAdapter(TorchAdapter):
    """MultiTask: one trunk, one head per target, the targets' losses weighted by ``loss_weights``."""

    family = "multi_task"
    network = "MultiTask"
    multi_target = True
    hyperparameters = ("hidden_dim", "dropout")

    def loss_weights(self, p: Params, data: TrainingData) -> list[float] | None:
        weights = p["loss_weights"]
        unknown = sorted(set(weights) - set(data.targets))
        if unknown:
            raise ValueError(f"families.multi_task.loss_weights names {', '.join(unknown)}, which the step does not "
                             f"train (its targets: {', '.join(data.targets)})")
        return [float(weights.get(target, 1.0)) for target in data.targets]
