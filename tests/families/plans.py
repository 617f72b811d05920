"""Plans for the family tests: the shipped profiles compiled for a fixed 4-CPU machine, small data; and the
yardstick of "it learned": better than a constant on the held-out test split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tkplan._data_digest import measure
from tkplan._trainers import family_trainers
from tkplan.families import prepare
from tkplan.planner import CompileRequest, HardwareSpec, compile_plan, resolve
from tkplan.planner._plan import Plan, Step
from tkplan.runtime._context import StepContext

MACHINE = HardwareSpec(
    cpus_usable=4, cpus_logical=4, cores_physical=4, memory_mb=16384, memory_total_mb=16384, gpus=(),
    gpu_driver=None, mps=False, platform="linux", machine="x86_64", cgroup=None)
"""A fixed machine, so the planned thread counts (4 for most families alone in a plan) do not depend on
the box the tests run on."""

BUILT_IN = family_trainers()
"""The built-in families' trainer and data preparation, as ``tkplan run`` gives them to the executor."""

SMALL_PANEL = ("data.synthetic.symbols=12", "data.synthetic.timestamps=300", "data.synthetic.features=12")


def compile_small(tmp_path: Path, *words: str) -> Plan:
    """Compile the shipped profiles for `MACHINE` with a small synthetic panel and ``words`` on top; a data file
    is measured as ``tkplan compile`` measures it."""
    request = CompileRequest(words=(*SMALL_PANEL, *words), cwd=tmp_path, env={}, hermetic=True)
    resolved = resolve(request)
    return compile_plan(request, MACHINE, "spec", "test", measure(resolved, tmp_path, None), resolved=resolved)


def context(plan: Plan, run_dir: Path, step: Step | None = None) -> StepContext:
    """The context the executor would give ``step`` (the plan's first by default)."""
    step = step or plan.steps[0]
    return StepContext(step=step, config=plan.config, hardware=plan.hardware, run_dir=run_dir,
                       out_dir=run_dir / "steps" / step.id)



def constant_rmse(run_dir: Path, config: Mapping[str, Any], target: str) -> float:
    """The test-split RMSE of predicting the train mean everywhere."""
    data = prepare(config, run_dir)
    train, test = data.part("train", target), data.part("test", target)
    return float(np.sqrt(np.mean((test.y - train.y.mean()) ** 2)))


def assert_learned(test: Mapping[str, Any], task: str, run_dir: Path, config: Mapping[str, Any], target: str, *,
                   min_auc: float) -> None:
    """Regression: R² > 0, RMSE below a constant's, rank IC > 0. Binary: ROC-AUC above ``min_auc``."""
    if task == "regression":
        assert test["r2"] > 0
        assert test["rmse"] < constant_rmse(run_dir, config, target)
        assert test["rank_ic"] > 0
    else:
        assert test["roc_auc"] > min_auc
