"""The planner's use of a history snapshot, given as data like the hardware spec (the store is the edge)."""

from __future__ import annotations

from pathlib import Path

import pytest

import tkplan
from tkplan.planner import CompileRequest, History, Observation, compile_plan, forecast, load_hardware
from tkplan.planner._history import params_digest

SPEC = Path(__file__).parent.parent / "specs" / "laptop_2core.yaml"
WORDS = ("campaign.families=[lightgbm,ftrl_proximal]", "campaign.targets=[fwd_ret_5m]")


def compiled(history: History | None = None):
    request = CompileRequest(words=WORDS, env={}, cwd=Path.cwd(), hermetic=True)
    return compile_plan(request, load_hardware(SPEC), "laptop_2core.yaml", tkplan.__version__, history=history)


def seen(step, *, threads: int, wall_s: float, cpu_s: float, run: str = "r1", status: str = "ok",
         peak: float = 200.0) -> Observation:
    """An observation of ``step`` as a run of it would have stored it."""
    return Observation(run=run, step=step.id, digest=step.digest, family=step.family, params=params_digest(step.params),
                       data=step.data, rows=6400, features=32, threads=threads, memory_cap_mb=step.limits.memory_cap_mb,
                       status=status, wall_s=wall_s, cpu_s=cpu_s, peak_rss_mb=peak, gpu_peak_mb=None, finished_at=1.0)


@pytest.fixture(scope="module")
def cold():
    return compiled()


def step_of(plan, family):
    return next(s for s in plan.steps if s.family == family)


def derived(step, key):
    return [d for d in step.derivations if d.key == key][-1]


class TestThreadSplit:
    def test_cold_the_costly_family_gets_both_threads(self, cold):
        assert step_of(cold, "lightgbm").resources.threads == 2

    def test_a_family_that_scales_keeps_them(self, cold):
        lgb = step_of(cold, "lightgbm")
        plan = compiled(History("test", "fp", (seen(lgb, threads=2, wall_s=52.0, cpu_s=100.0),)))
        assert step_of(plan, "lightgbm").resources.threads == 2
        assert derived(step_of(plan, "lightgbm"), "parallel_fraction").value == pytest.approx(0.96, abs=0.01)

    def test_a_family_that_does_not_scale_gives_its_second_thread_back(self, cold):
        """Speed-up 1.05 at two threads: the second thread would idle; one thread, as long, wastes nothing."""
        lgb = step_of(cold, "lightgbm")
        plan = compiled(History("test", "fp", (seen(lgb, threads=2, wall_s=95.0, cpu_s=100.0),)))
        step = step_of(plan, "lightgbm")
        assert step.resources.threads == 1
        assert derived(step, "threads").rule == "history"
        assert derived(step, "parallel_fraction").rule == "history"
        assert derived(step, "parallel_fraction").value == pytest.approx(0.1, abs=0.001)


class TestCosts:
    def test_a_step_without_runs_is_costed_by_its_constant_in_the_seconds_of_those_with(self, cold):
        lgb = step_of(cold, "lightgbm")
        plan = compiled(History("test", "fp", (seen(lgb, threads=1, wall_s=70.0, cpu_s=69.0),)))
        ftrl = derived(step_of(plan, "ftrl_proximal"), "expected_cpu_s")
        lgb_cost = plan.config["families"]["lightgbm"]["runtime"]["cost"]
        ftrl_cost = plan.config["families"]["ftrl_proximal"]["runtime"]["cost"]
        assert ftrl.rule == "cost_constant"
        assert ftrl.value == pytest.approx(ftrl_cost * 70.0 / lgb_cost, rel=1e-3)
        assert derived(step_of(plan, "lightgbm"), "expected_cpu_s").value == 70.0

    def test_the_forecast_plays_the_schedule_and_bounds_it(self, cold):
        lgb, ftrl = step_of(cold, "lightgbm"), step_of(cold, "ftrl_proximal")
        plan = compiled(History("test", "fp", (seen(lgb, threads=1, wall_s=70.0, cpu_s=69.0),
                                               seen(ftrl, threads=1, wall_s=30.0, cpu_s=30.0))))
        told = forecast(plan)
        assert told.seconds and told.work == 100.0
        assert told.lower_bound == 50.0  # 100 CPU s over 2 CPUs; lightgbm alone at its 2 threads is 35 s
        assert step_of(plan, "lightgbm").resources.threads == 2  # 70 s alone is longer than one lane of 50 s
        assert plan.schedule.order == (lgb.id, ftrl.id)
        assert told.makespan == 65.0  # lightgbm on both CPUs for 35 s, then ftrl's 30 s

    def test_a_cold_forecast_is_in_cost_units(self, cold):
        told = forecast(cold)
        assert not told.seconds
        assert told.work == 3.5 + 0.7


class TestMemory:
    def test_an_oom_doubles_the_larger_of_the_cap_and_the_peak(self, cold):
        lgb = step_of(cold, "lightgbm")
        history = History("test", "fp", (seen(lgb, threads=2, wall_s=1.0, cpu_s=1.0, status="oom", peak=900.0),))
        step = step_of(compiled(history), "lightgbm")
        assert lgb.limits.memory_cap_mb == 6553  # 0.8 × 16384 MB / 2 steps at once
        assert step.limits.memory_cap_mb == 2 * 6553
        assert "ended oom" in derived(step, "memory_cap_mb").why

    def test_nothing_matching_is_the_cold_plan(self, cold):
        other = Observation(run="r9", step="x", digest="0" * 64, family="xgboost", params="p", data="d", rows=None,
                            features=None, threads=1, memory_cap_mb=None, status="ok", wall_s=5.0, cpu_s=5.0,
                            peak_rss_mb=100.0, gpu_peak_mb=None, finished_at=1.0)
        assert compiled(History("test", "fp", (other,))) == cold
