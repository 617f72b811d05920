"""The TensorFlow (Keras) backend of the MLP and LSTM families: the same networks, losses and loop settings.

Picked by ``campaign.nn_backend: tf`` (install the extra ``tkplan[tf]``). The executor sets TensorFlow's
intra-/inter-op threads and the GPU memory limit before TensorFlow initialises (``runtime._child``); the
adapter asks TensorFlow for the thread counts it runs with and reports them. The loop is Keras' own
``fit`` with the plan's settings: AdamW or Adam with ``clipnorm`` = ``training.grad_clip_norm``,
``EarlyStopping`` (``patience``, ``min_delta``, ``restore_best_weights``), ``ReduceLROnPlateau`` or a cosine
decay, a checkpoint of the best epoch's weights (``checkpoint.best.npz``), focal or
class-weighted binary cross-entropy on logits, MSE or Huber, and the ``mixed_bfloat16`` / ``mixed_float16``
policy on a GPU planned at bf16 / fp16. Lookback windows are gathered batch by batch in a ``tf.data``
pipeline whose thread pool is the step's planned threads. The model is saved as a ``.keras`` file.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from tkplan._io import atomic_path
from tkplan.families._adapter import FamilyAdapter, FitResult, Params, TrainingData
from tkplan.families._nn_data import Standardiser, Targets, symbol_ids, window_index
from tkplan.runtime._context import log_epoch

if TYPE_CHECKING:
    from tkplan.planner._plan import Step

__all__ = ["KerasAdapter", "KerasLSTMAdapter", "KerasMLPAdapter", "KerasModel"]

_CHECKPOINT = "checkpoint.best.npz"  # tkplan: ignore[constant]  a file name, not a setting
_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
"""Keras' dtype policy for each planned precision (mixed precision only on a GPU)."""


@attrs.define(eq=False)
class KerasModel:
    """A trained Keras model, the scaling and windows its inputs need, and the threads of its input pipeline."""

    net: Any
    features: Standardiser
    targets: Targets
    lookback: int | None
    batch_size: int
    threads: int = 1

    def dataset(self, x: np.ndarray, times: np.ndarray, symbols: np.ndarray, y: np.ndarray | None = None,
                seed: int | None = None) -> Any:
        """A ``tf.data`` pipeline of ((features or windows, symbol ids), targets) batches; shuffled with ``seed``."""
        import tensorflow as tf

        padded = tf.constant(self.features.padded(x))
        rows = np.arange(len(x)) if self.lookback is None else window_index(symbols, times, self.lookback)
        columns: tuple[Any, ...] = (rows, np.asarray(symbols, dtype=np.int32))
        if y is not None:
            columns += (self.targets.scaled(y),)
        data = tf.data.Dataset.from_tensor_slices(columns)
        if seed is not None:
            data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

        def gather(index: Any, symbol: Any, *target: Any) -> Any:
            inputs = (tf.gather(padded, index), symbol)
            return (inputs, target[0]) if target else (inputs,)

        options = tf.data.Options()  # the pipeline's threads are the step's, not one per core of the machine
        options.threading.private_threadpool_size = self.threads
        options.threading.max_intra_op_parallelism = 1
        return data.batch(self.batch_size).map(gather).prefetch(tf.data.AUTOTUNE).with_options(options)

    def predict(self, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        raw = self.net.predict(self.dataset(x, times, symbols), verbose=0)
        return self.targets.predictions(raw)


class KerasAdapter(FamilyAdapter):
    """The common fit of the Keras families; a subclass builds the network body."""

    tasks = ("regression", "binary")
    library = "tensorflow"
    backend = "tf"
    model_file = "model.keras"
    sequential = False

    @abc.abstractmethod
    def body(self, p: Params, inputs: Any, keras: Any) -> Any:
        """The network from its (windows or features) input tensor to its pooled representation."""

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        import keras
        import tensorflow as tf

        p = Params(step)
        training = p["training"]
        threads = _threads(tf)
        keras.utils.set_random_seed(step.seed)
        keras.mixed_precision.set_global_policy(
            _POLICIES[step.resources.precision if step.resources.device == "cuda" else "fp32"])
        tasks = data.tasks or (data.task,)
        targets = Targets.fit(data.y_train, tasks)
        lookback = p["lookback"] if self.sequential else None
        model = KerasModel(self._network(p, data, len(tasks), lookback, keras), Standardiser.fit(data.x_train),
                           targets, lookback, p["batch_size"], step.resources.threads)
        batches = -(-len(data.x_train) // p["batch_size"])
        model.net.compile(optimizer=_optimizer(p, training, batches, keras), loss=_loss(tasks[0], training, keras))
        timer = _epoch_timer(keras, data.work_dir, p["epochs"])
        callbacks = [timer, *_callbacks(p, training, data.work_dir, keras)]
        train = model.dataset(data.x_train, data.t_train, symbol_ids(data.s_train, len(data.x_train)), data.y_train,
                              seed=step.seed)
        val = model.dataset(data.x_val, data.t_val, symbol_ids(data.s_val, len(data.x_val)), data.y_val)
        history = model.net.fit(
            train, validation_data=val,
            epochs=p["epochs"], callbacks=callbacks, class_weight=_class_weight(tasks[0], training, data.y_train),
            shuffle=False, verbose=0)  # the train pipeline shuffles, seeded
        losses = history.history["val_loss"]
        best = int(np.argmin(losses))
        steady = timer.seconds[1:] or timer.seconds  # the first epoch also traces and warms up
        info = {"epochs_run": len(losses), "batches_per_epoch": batches, "best_epoch": best + 1,
                "best_val_loss": round(float(losses[best]), 6),
                "stopped_early": len(losses) < p["epochs"],
                "seconds_per_epoch": round(float(np.median(steady)), 4) if steady else None,
                "first_epoch_s": round(timer.seconds[0], 4) if timer.seconds else None,
                "final_lr": float(keras.ops.convert_to_numpy(model.net.optimizer.learning_rate)),
                "device": step.resources.device, "precision": step.resources.precision,
                "policy": keras.mixed_precision.global_policy().name, "batch_size": p["batch_size"],
                "lookback": lookback, "parameters": int(model.net.count_params()),
                "vram_cap_mb": step.limits.vram_cap_mb,
                "checkpoint": _CHECKPOINT if training["checkpoint_best"] and data.work_dir else None,
                "curves": {"val_loss": [round(float(v), 6) for v in losses],
                           "loss": [round(float(v), 6) for v in history.history.get("loss", ())],
                           "epoch_s": [round(s, 4) for s in timer.seconds]}}
        return FitResult(model=model, threads=threads, params_used=p.used, info=info)

    def _network(self, p: Params, data: TrainingData, outputs: int, lookback: int | None, keras: Any) -> Any:
        features = data.x_train.shape[1]
        x = keras.Input(shape=(lookback, features) if lookback else (features,), name="features")
        symbol = keras.Input(shape=(), dtype="int32", name="symbol")
        pooled = self.body(p, x, keras)
        width = p["asset_embedding_dim"]
        if width:
            pooled = keras.layers.Concatenate()([pooled, keras.layers.Embedding(data.n_symbols, width)(symbol)])
        head = keras.layers.Dense(outputs, dtype="float32", name="head")(keras.layers.Dropout(p["dropout"])(pooled)
                                                                         if self.sequential else pooled)
        return keras.Model(inputs=(x, symbol), outputs=head)

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        return model.predict(x, times, symbol_ids(symbols, len(x)))

    def save(self, model: Any, path: Path) -> None:
        model.net.save(path)


class KerasMLPAdapter(KerasAdapter):
    """MLP on Keras: Dense (→ BatchNormalization) → ReLU → Dropout per hidden layer."""

    family = "mlp"

    def body(self, p: Params, inputs: Any, keras: Any) -> Any:
        x = inputs
        for width in p["hidden_layers"]:
            x = keras.layers.Dense(width)(x)
            if p["batch_norm"]:
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Dropout(p["dropout"])(keras.layers.ReLU()(x))
        return x


class KerasLSTMAdapter(KerasAdapter):
    """LSTM on Keras: optional Conv1D front, stacked LSTM/GRU (``recurrent_dropout`` between the stacked layers,
    as torch's; dropout on the recurrent state itself would take Keras off the fused cuDNN kernel onto a
    step-by-step loop), optional attention of the last step over every step (as the torch network)."""

    family = "lstm"
    sequential = True

    def body(self, p: Params, inputs: Any, keras: Any) -> Any:
        x = inputs
        filters, kernel_size = p["conv_filters"], p["kernel_size"]
        for _ in range(p["conv_layers"]):
            x = keras.layers.Conv1D(filters, kernel_size, padding="same")(x)
            x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
        cell = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[p["cell"]]
        for layer in range(p["lstm_layers"]):
            last = layer == p["lstm_layers"] - 1
            if layer:  # between stacked layers, as torch's nn.LSTM(dropout=): the fused kernel stays usable
                x = keras.layers.Dropout(p["recurrent_dropout"])(x)
            x = cell(p["lstm_units"], return_sequences=p["attention"] or not last)(x)
        x = keras.layers.LayerNormalization()(x)
        if not p["attention"]:
            return x
        heads = p["attention_heads"]
        last = x[:, -1:, :]
        attended = keras.layers.MultiHeadAttention(heads, p["lstm_units"] // heads, dropout=p["dropout"])(last, x)
        return keras.layers.Flatten()(keras.layers.LayerNormalization()(keras.layers.Add()([attended, last])))


def _epoch_timer(keras: Any, progress: Path | None, epochs: int) -> Any:
    """A Keras callback that records each epoch's wall time in ``seconds`` and logs the epoch in ``progress``
    (the step directory, for the live display; ``None``: not logged)."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)
            if progress is not None:
                val_loss = (logs or {}).get("val_loss")
                log_epoch(progress, epoch + 1, epochs, epoch_s=round(self.seconds[-1], 4),
                          val_loss=None if val_loss is None else round(float(val_loss), 6))

    return EpochTimer()


def _threads(tf: Any) -> dict[str, int]:
    """TensorFlow's intra- and inter-op pools as the step's child set them (from the plan's pools)."""
    return {"tf.intra_op_threads": int(tf.config.threading.get_intra_op_parallelism_threads()),
            "tf.inter_op_threads": int(tf.config.threading.get_inter_op_parallelism_threads())}


def _optimizer(p: Params, training: Any, batches: int, keras: Any) -> Any:
    """AdamW or Adam with gradient clipping; under the cosine schedule the rate decays over every batch."""
    spec = training["optimizer"]
    clip = training["grad_clip_norm"]
    kind = {"adamw": keras.optimizers.AdamW, "adam": keras.optimizers.Adam}[spec["name"]]
    learning_rate: Any = p["learning_rate"]
    schedule = training["lr_scheduler"]
    if schedule["name"] == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            p["learning_rate"], decay_steps=p["epochs"] * batches, alpha=schedule["min_lr"] / p["learning_rate"])
    options = {"weight_decay": spec["weight_decay"]} if spec["name"] == "adamw" else {}
    return kind(learning_rate=learning_rate, clipnorm=clip, **options)


def _loss(task: str, training: Any, keras: Any) -> Any:
    if task == "regression":
        return keras.losses.Huber() if training["regression_loss"] == "huber" else keras.losses.MeanSquaredError()
    spec = training["binary_loss"]
    if spec["name"] == "focal":
        return keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=spec["alpha"],
                                                    gamma=spec["gamma"], from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)


def _class_weight(task: str, training: Any, y: np.ndarray) -> dict[int, float] | None:
    """``weighted_bce``: the positive class weighted by negatives / positives, as the torch loop does."""
    if task != "binary" or training["binary_loss"]["name"] != "weighted_bce":
        return None
    positives = float(np.sum(y))
    return {0: 1.0, 1: (len(y) - positives) / max(positives, 1.0)}


def _callbacks(p: Params, training: Any, work_dir: Path | None, keras: Any) -> list[Any]:
    stopping = training["early_stopping"]
    callbacks = [keras.callbacks.EarlyStopping(monitor=stopping["monitor"], patience=p["patience"],
                                               min_delta=stopping["min_delta"],
                                               restore_best_weights=stopping["restore_best_weights"])]
    schedule = training["lr_scheduler"]
    if schedule["name"] == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=stopping["monitor"], patience=schedule["patience"],
                                                           factor=schedule["factor"], min_lr=schedule["min_lr"]))
    if training["checkpoint_best"] and work_dir is not None:
        callbacks.append(_best_weights(keras, work_dir / _CHECKPOINT, stopping["monitor"]))
    return callbacks


def _best_weights(keras: Any, path: Path, monitor: str) -> Any:
    """A Keras callback that writes the best epoch's weights to ``path`` atomically, as the torch loop writes its
    ``state_dict``: an ``.npz`` of ``epoch``, ``val_loss`` and the weights in ``model.weights`` order
    (``arr_0``, ``arr_1``, …; ``model.set_weights`` takes them back). Keras' ``ModelCheckpoint`` walks the whole
    model in Python on every save, which took longer than a small network's epoch of training."""

    class BestWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best = np.inf

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            value = float((logs or {}).get(monitor, np.inf))
            if value < self.best:
                self.best = value
                with atomic_path(path) as partial, open(partial, "wb") as fh:
                    np.savez(fh, *self.model.get_weights(), epoch=epoch + 1, val_loss=value)

    return BestWeights()
