"""A sweep's one schedule: the union of its points' steps, each distinct step (by digest) once, under one budget.

Sweeps compile hermetically for a fixed hardware spec (``tests/specs/laptop_2core.yaml``), so nothing here
depends on the machine running the tests.
"""

from __future__ import annotations

from pathlib import Path

import tkplan
from tkplan.planner import CompileRequest, SweepPlan, compile_sweep, load_hardware, plan_from_json, plan_to_json
from tkplan.planner._rules import start_order

LAPTOP = load_hardware(Path(__file__).parents[1] / "specs" / "laptop_2core.yaml")
ONE_FAMILY = ("ci_fast", "campaign.families=[lightgbm,ftrl_proximal]", "campaign.targets=[fwd_ret_5m]")


def swept(*words: str) -> SweepPlan:
    return compile_sweep(CompileRequest(words=words, env={}, hermetic=True), LAPTOP, "laptop_2core.yaml",
                         tkplan.__version__)


class TestUnion:
    def test_each_distinct_step_is_in_the_union_once_with_the_points_that_share_it(self):
        sweep = swept(*ONE_FAMILY, "families.lightgbm.num_leaves=7,15,31")
        schedule = sweep.schedule
        assert [(s.step, s.points) for s in schedule.steps] == [
            ("lightgbm.fwd_ret_5m.s42", (0,)), ("ftrl_proximal.fwd_ret_5m.s42", (0, 1, 2)),
            ("lightgbm.fwd_ret_5m.s42", (1,)), ("lightgbm.fwd_ret_5m.s42", (2,))]
        digests = {s.digest for p in sweep.plans.values() for s in p.steps}
        assert {s.digest for s in schedule.plan.steps} == digests and len(schedule.plan.steps) == len(digests)
        assert [s.id for s in schedule.plan.steps] == [f"{s.step}.{s.digest[:12]}" for s in schedule.steps]
        assert [s.home for s in schedule.steps] == [sweep.points[i].plan_hash for i in (0, 0, 1, 2)]

    def test_the_union_is_a_plan_that_reads_back_with_its_hash(self):
        union = swept(*ONE_FAMILY, "families.lightgbm.num_leaves=7,15").schedule.plan
        assert plan_from_json(plan_to_json(union)) == union

    def test_a_sweep_with_more_values_has_every_step_of_the_smaller_one_under_the_same_id(self):
        def steps(values: str) -> set[tuple[str, str]]:
            union = swept(*ONE_FAMILY, f"families.lightgbm.num_leaves={values}").schedule.plan
            return {(s.id, s.digest) for s in union.steps}

        smaller, wider = steps("7,15"), steps("3,7,15")
        assert smaller < wider and len(wider - smaller) == 1

    def test_steps_start_in_the_planner_s_order(self):
        sweep = swept(*ONE_FAMILY, "families.lightgbm.num_leaves=7,15")
        union, plan = sweep.schedule.plan, next(iter(sweep.plans.values()))
        costs = {s.id: plan.config["families"][s.family]["runtime"]["cost"] / s.resources.threads for s in union.steps}
        assert union.schedule.order == start_order(union.steps, costs)
        assert union.schedule.order[0].startswith("lightgbm.")  # the costlier family first


class TestBudget:
    def test_one_budget_for_all_points_and_memory_shares_taken_at_the_union_s_slots(self):
        sweep = swept("ci_fast", "campaign.families=[lightgbm]", "campaign.targets=[fwd_ret_5m]",
                      "families.lightgbm.runtime.threads.max=1", "families.lightgbm.num_leaves=7,15")
        point = next(iter(sweep.plans.values()))
        assert (point.schedule.max_parallel, len(point.steps)) == (1, 1)  # alone, a point's step has all the share
        union = sweep.schedule.plan
        assert (union.schedule.thread_budget, union.schedule.max_parallel) == (LAPTOP.cpus_usable, 2)
        threshold = point.config["limits"]["memory_threshold"]
        assert point.steps[0].limits.memory_cap_mb == int(LAPTOP.memory_mb * threshold)
        assert {s.limits.memory_cap_mb for s in union.steps} == {int(LAPTOP.memory_mb * threshold / 2)}
        assert union.steps[0].derivations[-1].why.endswith("steps at once in the sweep's one schedule")
        assert union.schedule.deadline_s == point.schedule.deadline_s
        assert [d.rule for d in union.schedule.derivations] == ["sweep_budget"] * 3

    def test_the_union_s_config_is_the_first_point_s_with_every_point_s_targets(self):
        sweep = swept("ci_fast", "campaign.families=[lightgbm]", "campaign.targets=[fwd_ret_5m],[will_peak_5m]")
        union = sweep.schedule.plan
        assert {s.target for s in union.steps} == {"fwd_ret_5m", "will_peak_5m"}
        assert set(union.config["data"]["tasks"]) >= {"fwd_ret_5m", "will_peak_5m"}


def test_a_project_setting_is_part_of_what_decides_a_step_so_a_sweep_over_it_shares_nothing():
    """A trainer of one's own reads ``ctx.config["project"]``: its steps are other work for another value."""
    sweep = swept(*ONE_FAMILY, "++project={lr: 0.1}", "project.lr=0.1,0.2")
    assert [s.points for s in sweep.schedule.steps] == [(0,), (0,), (1,), (1,)]
