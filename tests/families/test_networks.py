"""The eleven network families on PyTorch, trained under compiled plans on a small synthetic panel: each
learns, stops early, uses every planned hyperparameter, and takes its threads and batch size from the plan."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tkplan.families import adapter_for, run_step

from .plans import assert_learned, compile_small, context

NETWORKS = ("mlp", "cnn1d", "lstm", "transformer", "tab_cnn", "tab_lstm", "tab_transformer", "vae", "gan",
            "meta_learning", "multi_task")

SHORT = ("data.lookback=8",)
"""Sequence families look 8 rows back here (the profile's 64 is a long window for a 300-step panel)."""

# family, target, overrides that keep the fit small; every other hyperparameter is the shipped profile's.
CASES = [
    ("mlp", "fwd_ret_5m", ["families.mlp.epochs=8"]),
    ("mlp", "will_peak_5m", ["families.mlp.epochs=8"]),
    ("cnn1d", "fwd_ret_5m", ["families.cnn1d.epochs=8"]),
    ("lstm", "fwd_ret_5m", ["families.lstm.epochs=8", "families.lstm.lstm_units=32"]),
    ("lstm", "will_peak_5m", ["families.lstm.epochs=8", "families.lstm.lstm_units=32", "families.lstm.cell=gru",
                              "families.lstm.conv_layers=1", "families.lstm.asset_embedding_dim=4"]),
    ("transformer", "fwd_ret_5m", ["families.transformer.epochs=6", "families.transformer.d_model=32",
                                   "families.transformer.ff_dim=64"]),
    ("tab_cnn", "fwd_ret_5m", ["families.tab_cnn.epochs=8"]),
    ("tab_lstm", "fwd_ret_5m", ["families.tab_lstm.epochs=8", "families.tab_lstm.lstm_units=32"]),
    ("tab_transformer", "fwd_ret_5m", ["families.tab_transformer.epochs=6", "families.tab_transformer.d_model=32",
                                         "families.tab_transformer.ff_dim=64"]),
    ("vae", "fwd_ret_5m", ["families.vae.epochs=8"]),
    ("vae", "will_peak_5m", ["families.vae.epochs=8"]),
    ("gan", "fwd_ret_5m", ["families.gan.epochs=8"]),
    ("meta_learning", "fwd_ret_5m", ["families.meta_learning.epochs=8"]),
    ("meta_learning", "will_peak_5m", ["families.meta_learning.epochs=8"]),
]


def test_every_network_family_has_a_torch_adapter_and_a_case():
    """Every network family trains on PyTorch; the cases cover each one (MultiTask in its own tests)."""
    assert {family for family, _, _ in CASES} | {"multi_task"} == set(NETWORKS)
    assert {adapter_for(f, "torch").library for f in NETWORKS} == {"torch"}


@pytest.mark.parametrize("family, target, overrides", CASES, ids=[f"{f}-{t}" for f, t, _ in CASES])
def test_network_learns_under_its_plan(family, target, overrides, tmp_path, run_dir):
    """A few epochs beat a constant on the held-out test split, with the planned threads and batch size."""
    plan = compile_small(tmp_path, f"campaign.families=[{family}]", f"campaign.targets=[{target}]", *SHORT,
                         *overrides)
    (step,) = plan.steps
    intra = step.resources.pools.torch_intra
    assert intra == step.resources.threads  # the plan gives torch the step's threads
    torch.set_num_threads(intra)  # as the step's child does, before the trainer

    result = run_step(context(plan, run_dir))

    assert_learned(result["metrics"]["test"], step.task, run_dir, plan.config, target, min_auc=0.6)
    assert result["threads"] == {"torch.num_threads": step.resources.threads}
    assert result["params_unused"] == []
    fit = result["fit"]
    rows = result["data"]["rows"]["train"]
    assert fit["batches_per_epoch"] == math.ceil(rows / step.params["batch_size"])
    assert (fit["device"], fit["precision"]) == ("cpu", "fp32")
    assert fit["lookback"] == (8 if family in ("cnn1d", "lstm", "transformer") else None)
    saved = torch.load(run_dir / "steps" / step.id / "model.pt", weights_only=False)
    assert saved["architecture"]["arguments"]["outputs"] == 1


def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path, run_dir):
    """Patience 2 on a long schedule: training stops two epochs after its best, and keeps that epoch's weights."""
    plan = compile_small(tmp_path, "campaign.families=[mlp]", "campaign.targets=[fwd_ret_5m]",
                         "families.mlp.epochs=200", "families.mlp.patience=2", "families.mlp.learning_rate=0.01")
    (step,) = plan.steps

    fit = run_step(context(plan, run_dir))["fit"]

    assert fit["stopped_early"] is True
    assert fit["epochs_run"] == fit["best_epoch"] + 2 < 200
    out = run_dir / "steps" / step.id
    best = torch.load(out / "checkpoint.best.pt", weights_only=False)
    kept = torch.load(out / "model.pt", weights_only=False)["state_dict"]
    assert best["epoch"] == fit["best_epoch"]
    assert all(torch.equal(best["state_dict"][name], kept[name]) for name in kept)


def test_the_transformer_runs_with_the_batch_size_scaled_for_300_features(tmp_path, run_dir):
    """300 features > the 200 threshold: batch max(32, 128·200/300) = 85, planned and used."""
    plan = compile_small(tmp_path, "campaign.families=[transformer]", "campaign.targets=[fwd_ret_5m]",
                         "data.synthetic.features=300", "data.synthetic.symbols=10", "data.synthetic.timestamps=200",
                         "data.lookback=2", "families.transformer.epochs=1", "families.transformer.d_model=8",
                         "families.transformer.heads=2", "families.transformer.ff_dim=16")
    (step,) = plan.steps
    assert step.params["batch_size"] == 85
    assert any(d.rule == "seq_batch_scaling" and d.value == 85 for d in step.derivations)

    result = run_step(context(plan, run_dir))

    assert result["fit"]["batch_size"] == 85
    assert result["fit"]["batches_per_epoch"] == math.ceil(result["data"]["rows"]["train"] / 85)
    assert result["data"]["features"] == 300


class TestMultiTask:
    """One step trains every target, with a head per target and the profile's loss weights."""

    def plan(self, tmp_path, *words):
        return compile_small(tmp_path, "campaign.families=[multi_task]", "campaign.targets=[fwd_ret_5m, will_peak_5m]",
                             "families.multi_task.epochs=10", *words)

    def test_one_step_learns_every_target(self, tmp_path, run_dir):
        plan = self.plan(tmp_path)
        (step,) = plan.steps
        assert (step.targets, step.task) == (("fwd_ret_5m", "will_peak_5m"), "multi")

        result = run_step(context(plan, run_dir))

        test = result["metrics"]["test"]
        assert test["fwd_ret_5m"]["r2"] > 0
        assert test["will_peak_5m"]["roc_auc"] > 0.6
        assert np.load(run_dir / "steps" / step.id / "predictions.test.npy").shape == (test["fwd_ret_5m"]["n"], 2)
        assert result["params_unused"] == []

    def test_a_zero_loss_weight_leaves_that_head_untrained(self, tmp_path, run_dir):
        plan = self.plan(tmp_path, "families.multi_task.loss_weights={will_peak_5m: 0}")

        test = run_step(context(plan, run_dir))["metrics"]["test"]

        assert test["fwd_ret_5m"]["r2"] > 0
        assert abs(test["will_peak_5m"]["roc_auc"] - 0.5) < 0.1

    def test_a_loss_weight_for_another_target_is_refused(self, tmp_path, run_dir):
        plan = self.plan(tmp_path, "families.multi_task.loss_weights={fwd_ret_15m: 2}")
        with pytest.raises(ValueError, match=r"loss_weights names fwd_ret_15m, which the step does not train"):
            run_step(context(plan, run_dir))


def test_the_binary_loss_and_schedule_come_from_the_plan(tmp_path, run_dir):
    """weighted_bce and the cosine schedule: the learning rate ends at min_lr after the last epoch."""
    plan = compile_small(tmp_path, "campaign.families=[mlp]", "campaign.targets=[will_peak_5m]",
                         "families.mlp.epochs=5", "families.mlp.patience=50", "training.binary_loss.name=weighted_bce",
                         "training.lr_scheduler.name=cosine", "training.optimizer.name=adam")

    result = run_step(context(plan, run_dir))

    assert result["metrics"]["test"]["roc_auc"] > 0.6
    assert result["fit"]["epochs_run"] == 5
    assert result["fit"]["final_lr"] == pytest.approx(plan.config["training"]["lr_scheduler"]["min_lr"])
