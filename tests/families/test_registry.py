"""The adapter registry, and what importing the package costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tkplan.families import FamilyAdapter, _adapter, adapter_for, register, registered

BUILT_IN = ("change_point", "cnn1d", "ensemble", "ftrl_proximal", "gan", "gmm_regime", "lightgbm", "lstm",
            "meta_learning", "mlp", "multi_task", "ngboost", "quantile_lightgbm", "reward_based", "tab_cnn", "tab_lstm",
            "tab_transformer", "transformer", "vae", "xgboost")
"""The seed pipeline's twenty families."""


@pytest.fixture
def registry(monkeypatch):
    """A copy of the registry that the test may change."""
    monkeypatch.setattr(_adapter, "_registry", dict(_adapter._registry))


class Mean(FamilyAdapter):
    family = "mean"
    tasks = ("regression",)
    library = "numpy"
    model_file = "mean.npy"

    def fit(self, data, step):
        raise NotImplementedError

    def predict(self, model, x, times, symbols):
        raise NotImplementedError

    def save(self, model, path):
        raise NotImplementedError


def test_built_in_families():
    assert registered() == BUILT_IN


def test_register_and_look_up(registry):
    """register() makes an adapter the one adapter_for() returns; it works as a decorator."""
    assert register(Mean) is Mean
    assert isinstance(adapter_for("mean"), Mean)


def test_unknown_family(registry):
    with pytest.raises(LookupError,
                       match=r"no built-in adapter for family 'mean' \(registered: change_point \(sklearn\), "):
        adapter_for("mean")


def test_a_family_of_two_backends_has_an_adapter_for_each():
    """MLP and LSTM train on torch or TensorFlow: the backend names the adapter; without one it is ambiguous."""
    assert (adapter_for("mlp", "torch").library, adapter_for("mlp", "tf").library) == ("torch", "tensorflow")
    assert adapter_for("lstm", "tf").model_file == "model.keras"
    with pytest.raises(LookupError, match=r"family 'mlp' has adapters for several backends \(tf, torch\); name one"):
        adapter_for("mlp")
    with pytest.raises(LookupError, match=r"no built-in adapter for family 'gan' on backend 'tf'"):
        adapter_for("gan", "tf")


def test_register_refuses_a_second_adapter_unless_replacing(registry):
    class Other(Mean):
        pass

    register(Mean)
    with pytest.raises(ValueError, match=r"family 'mean' already has the numpy adapter Mean; pass replace=True"):
        register(Other)
    register(Other, replace=True)
    assert isinstance(adapter_for("mean"), Other)


def test_register_refuses_incomplete_adapters(registry):
    """An abstract class, a non-adapter, or an adapter without a required attribute is refused."""

    class Abstract(FamilyAdapter):
        family = "abstract"

    without_file = type("WithoutFile", (FamilyAdapter,), {k: v for k, v in vars(Mean).items() if k != "model_file"})
    with pytest.raises(TypeError, match="not a concrete FamilyAdapter subclass"):
        register(Abstract)  # type: ignore[type-abstract]  # refused at run time: the point of the test
    with pytest.raises(TypeError, match="not a concrete FamilyAdapter subclass"):
        register(dict)  # type: ignore[arg-type]  # refused at run time: the point of the test
    with pytest.raises(TypeError, match="WithoutFile lacks the required attribute"):
        register(without_file)


def test_import_loads_no_ml_library():
    """Importing tkplan.families loads no ML library: each adapter imports its own inside fit."""
    code = ("import sys, tkplan.families; "
            "print(sorted(m for m in ('lightgbm', 'xgboost', 'sklearn', 'ngboost', 'pandas', 'pyarrow', 'scipy', "
            "'torch', 'tensorflow', 'threadpoolctl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_adapters_train_the_tasks_their_profiles_declare(tmp_path):
    """Each built-in adapter's tasks are its profile's runtime.tasks, so the planner skips what it cannot train."""
    from .plans import compile_small

    families = compile_small(tmp_path, "campaign.families=[lightgbm]").config["families"]
    for family in BUILT_IN:
        runtime = families[family]["runtime"]
        for backend in [b for b in runtime["backends"] if b in ("torch", "tf")] or [None]:
            adapter = adapter_for(family, backend)
            assert adapter.tasks == tuple(runtime["tasks"]), family
            assert adapter.multi_target == runtime["multi_target"], family
