"""A study's trial compiles to one plan whatever isolation the driver guessed for it (the last trial's)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tkplan
from tkplan.planner import CompileRequest, compile_trial, load_hardware, load_study, plan_to_json
from tkplan.planner._compile import plan_resolved, resolve_point
from tkplan.planner._search import trial_overrides

TESTS = Path(__file__).parent.parent
HARDWARE = load_hardware(TESTS / "specs" / "laptop_2core.yaml")
VALUES = {"families.lightgbm.num_leaves": 12, "families.lightgbm.learning_rate": 0.05}


@pytest.fixture()
def study(tmp_path):
    shutil.copytree(TESTS / "fixtures" / "profiles" / "tune", tmp_path, dirs_exist_ok=True)
    return load_study(CompileRequest(words=("ci_fast", "lightgbm_study.yaml"), cwd=tmp_path, hermetic=True))


@pytest.mark.parametrize("guess", [None, "process", "inproc"])
def test_a_trial_is_the_same_plan_whatever_isolation_was_guessed(study, guess):
    plan = compile_trial(study, VALUES, 3, 1, HARDWARE, "spec", tkplan.__version__, isolation=guess)
    unguessed = compile_trial(study, VALUES, 3, 1, HARDWARE, "spec", tkplan.__version__)
    assert plan_to_json(plan) == plan_to_json(unguessed)
    assert [s.isolation.mode for s in plan.steps] == ["inproc"]  # one CPU step: the slot's warm worker
    assert plan.provenance["isolation.force"][-1]["source"].startswith("tune: the study")



EDGES = {"families.lightgbm.num_leaves": 4, "families.lightgbm.learning_rate": 0.3}


@pytest.mark.parametrize("values", [VALUES, EDGES])
def test_a_trial_is_planned_as_a_compile_from_scratch_of_its_overrides_plans_it(study, values):
    """The trials share what they have in common (as a sweep's points do); each plan is still the plain path's."""
    plan = compile_trial(study, values, 5, 1, HARDWARE, "spec", tkplan.__version__)
    overrides = trial_overrides(study, values, 5, 1, isolation="inproc")
    plain = plan_resolved(resolve_point(study.base, overrides), plan.inputs.cli, HARDWARE, "spec", tkplan.__version__)
    assert plan_to_json(plan) == plan_to_json(plain)
