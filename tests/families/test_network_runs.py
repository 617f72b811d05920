"""Network steps run by the executor in their own processes: the planned threads reach torch and TensorFlow
from inside the child, and the TensorFlow backend (``campaign.nn_backend: tf``) trains MLP and LSTM."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import tkplan
from tkplan.families import Params
from tkplan.planner import CompileRequest, compile_plan, probe
from tkplan.runtime import execute

from .plans import BUILT_IN, SMALL_PANEL, assert_learned

needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="TensorFlow is not installed (the extra tkplan[tf])")


def compile_here(tmp_path, *words):
    """The shipped profiles compiled for this machine (the executor refuses a plan for another one)."""
    request = CompileRequest(words=(*SMALL_PANEL, "data.lookback=8", *words), cwd=tmp_path, env={}, hermetic=True)
    return compile_plan(request, probe(), "probe", tkplan.__version__)


def test_a_torch_step_runs_with_its_planned_threads_in_its_own_process(tmp_path):
    """In the child: torch's intra-op threads are the step's, inter-op the plan's, OpenMP pools the step's."""
    plan = compile_here(tmp_path, "campaign.families=[mlp]", "campaign.targets=[fwd_ret_5m]", "families.mlp.epochs=3")
    (step,) = plan.steps
    assert step.isolation.mode == "process"

    (result,) = execute(plan, tmp_path / "run", trainers=BUILT_IN).results

    assert result.status == "ok", result.error
    threads, inter = step.resources.threads, plan.config["threading"]["inter_op_threads"]
    assert result.output["threads"] == {"torch.num_threads": threads}
    assert result.applied["torch"] == {"num_threads": threads, "num_interop_threads": inter}
    openmp = {pool["num_threads"] for pool in result.pools if pool["user_api"] == "openmp"}
    assert openmp <= {threads}
    assert result.metrics["test"]["r2"] > 0


@needs_tf
@pytest.mark.parametrize("family, overrides", [
    ("mlp", ["families.mlp.epochs=8"]),
    ("lstm", ["families.lstm.epochs=8", "families.lstm.lstm_units=32"]),
])
def test_the_tensorflow_backend_trains_under_the_plan(family, overrides, tmp_path):
    """nn_backend tf: Keras learns the target in the child, with TensorFlow's thread pools set by the plan."""
    plan = compile_here(tmp_path, f"campaign.families=[{family}]", "campaign.targets=[fwd_ret_5m]",
                        "campaign.nn_backend=tf", *overrides)
    (step,) = plan.steps
    assert step.env["TF_NUM_INTRAOP_THREADS"] == str(step.resources.threads)

    run_dir = tmp_path / "run"
    (result,) = execute(plan, run_dir, trainers=BUILT_IN).results

    assert result.status == "ok", result.error
    threads, inter = step.resources.threads, plan.config["threading"]["inter_op_threads"]
    assert result.output["threads"] == {"tf.intra_op_threads": threads, "tf.inter_op_threads": inter}
    assert result.applied["tf"]["intra_op_threads"] == threads
    assert_learned(result.metrics["test"], "regression", run_dir, plan.config, "fwd_ret_5m", min_auc=0.6)
    assert list(result.output["params_unused"]) == []
    assert (run_dir / "steps" / step.id / "model.keras").is_file()
    best = np.load(run_dir / "steps" / step.id / "checkpoint.best.npz")  # the best epoch, as torch saves its own
    assert int(best["epoch"]) == result.output["fit"]["best_epoch"]
    assert result.output["fit"]["policy"] == "float32"


@needs_tf
def test_the_keras_lstm_drops_out_between_layers_as_torch_does(tmp_path):
    """`recurrent_dropout` is dropout between the stacked layers on both backends: never on the recurrent state,
    which would keep Keras off its fused (cuDNN) LSTM kernel on a step-by-step loop."""
    import keras

    from tkplan.families import KerasLSTMAdapter, TrainingData

    plan = compile_here(tmp_path, "campaign.families=[lstm]", "campaign.targets=[fwd_ret_5m]",
                        "campaign.nn_backend=tf", "families.lstm.lstm_layers=3", "families.lstm.recurrent_dropout=0.3",
                        "families.lstm.lstm_units=8", "families.lstm.attention_heads=2")
    (step,) = plan.steps
    x = np.zeros((4, 5), dtype=np.float32)
    data = TrainingData(x_train=x, y_train=np.zeros(4), t_train=np.arange(4), x_val=x, y_val=np.zeros(4),
                        t_val=np.arange(4), feature_names=tuple("abcde"), task="regression")
    net = KerasLSTMAdapter()._network(Params(step), data, 1, 8, keras)
    recurrent = [layer for layer in net.layers if isinstance(layer, keras.layers.LSTM)]
    assert [layer.cell.recurrent_dropout for layer in recurrent] == [0.0, 0.0, 0.0]
    inputs = [layer.input for layer in recurrent[1:]]
    assert [type(t._keras_history.operation).__name__ for t in inputs] == ["Dropout", "Dropout"]
    assert [t._keras_history.operation.rate for t in inputs] == [0.3, 0.3]
