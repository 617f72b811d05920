"""Reading a sweep file back: its plans are what was compiled, and what they have in common is made once.

Sweeps compile hermetically for a fixed hardware spec (``tests/specs/laptop_2core.yaml``).
"""

from __future__ import annotations

from pathlib import Path

import tkplan
from tkplan.planner import CompileRequest, SweepPlan, compile_sweep, load_hardware, sweep_from_json, sweep_to_json
from tkplan.planner._convert import freeze_shared

LAPTOP = load_hardware(Path(__file__).parents[1] / "specs" / "laptop_2core.yaml")
TWO_FAMILIES = ("ci_fast", "campaign.families=[lightgbm,ftrl_proximal]", "campaign.targets=[fwd_ret_5m]")


def swept(*words: str) -> SweepPlan:
    return compile_sweep(CompileRequest(words=words, env={}, hermetic=True), LAPTOP, "laptop_2core.yaml",
                         tkplan.__version__)


def test_a_sweep_reads_back_as_compiled_and_its_plans_share_what_they_have_in_common():
    sweep = swept(*TWO_FAMILIES, "families.lightgbm.num_leaves=7,15,31")
    text = sweep_to_json(sweep)
    read = sweep_from_json(text)
    assert read == sweep and sweep_to_json(read) == text
    first, *others = (read.plans[p.plan_hash] for p in read.points)
    for plan in others:
        assert plan.step("ftrl_proximal.fwd_ret_5m.s42") is first.step("ftrl_proximal.fwd_ret_5m.s42")
        assert plan.step("lightgbm.fwd_ret_5m.s42") is not first.step("lightgbm.fwd_ret_5m.s42")
        assert plan.config["families"]["ftrl_proximal"] is first.config["families"]["ftrl_proximal"]
        assert plan.provenance["campaign.families"] is first.provenance["campaign.families"]


def test_points_whose_values_differ_only_in_type_keep_their_own_values():
    sweep = swept(*TWO_FAMILIES, "families.lightgbm.learning_rate=1,1.0")
    read = sweep_from_json(sweep_to_json(sweep))
    rates = [read.plans[p.plan_hash].step("lightgbm.fwd_ret_5m.s42").params["learning_rate"] for p in read.points]
    assert [type(r) for r in rates] == [int, float]
    configs = [read.plans[p.plan_hash].config["families"]["lightgbm"]["learning_rate"] for p in read.points]
    assert [type(c) for c in configs] == [int, float]


def test_freezing_shares_only_what_is_the_same_data_to_the_type():
    seen: dict[bytes, object] = {}
    first = freeze_shared({"a": {"x": [1, 2]}, "b": {"on": 1}}, seen)
    second = freeze_shared({"a": {"x": [1, 2]}, "b": {"on": True}}, seen)
    assert second["a"] is first["a"] and second["a"]["x"] == (1, 2)
    assert second["b"]["on"] is True and first["b"]["on"] == 1 and first["b"]["on"] is not True
