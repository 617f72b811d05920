"""The adapter registry, and what importing the package costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tkplan.families import FamilyAdapter, adapter_for, register, registered
from tkplan.families import _adapter

BUILT_IN = ("change_point", "ensemble", "ftrl_proximal", "gmm_regime", "lightgbm", "ngboost", "quantile_lightgbm",
            "reward_based", "xgboost")


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

    def predict(self, model, x, times):
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
    with pytest.raises(LookupError, match=r"no built-in adapter for family 'mlp' \(registered: change_point, "):
        adapter_for("mlp")


def test_register_refuses_a_second_adapter_unless_replacing(registry):
    class Other(Mean):
        pass

    register(Mean)
    with pytest.raises(ValueError, match=r"family 'mean' already has the adapter Mean; pass replace=True"):
        register(Other)
    register(Other, replace=True)
    assert isinstance(adapter_for("mean"), Other)


def test_register_refuses_incomplete_adapters(registry):
    """An abstract class, a non-adapter, or an adapter without a required attribute is refused."""

    class Abstract(FamilyAdapter):
        family = "abstract"

    without_file = type("WithoutFile", (FamilyAdapter,), {k: v for k, v in vars(Mean).items() if k != "model_file"})
    with pytest.raises(TypeError, match="not a concrete FamilyAdapter subclass"):
        register(Abstract)
    with pytest.raises(TypeError, match="not a concrete FamilyAdapter subclass"):
        register(dict)
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
    assert {f: tuple(families[f]["runtime"]["tasks"]) for f in BUILT_IN} == {f: adapter_for(f).tasks for f in BUILT_IN}
