"""Plans that learn from earlier runs: real runs on tiny data through the CLI, then compiles that use what they saw."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tkplan.planner import forecast, read_plan
from tkplan.planner._overrides import LEGACY_ENV

from .runtime.projects import REPO, TKPLAN, family, write_project

WORDS = ("campaign.families=[lightgbm,ftrl_proximal]", "data.synthetic.symbols=10", "data.synthetic.timestamps=120")
"""A campaign of four real steps (two families × two targets) that trains in seconds."""


def tkplan(project: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the ``tkplan`` console script in ``project`` with its own cache directory (and history store)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN") and k not in LEGACY_ENV}
    env["TKPLAN_CACHE_DIR"] = str(project / ".cache")
    done = subprocess.run([*TKPLAN, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == code, done.stdout + done.stderr
    return done


def results(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each step's ``result.json`` of a run directory."""
    return {p.parent.name: json.loads(p.read_text()) for p in (run_dir / "steps").glob("*/result.json")}


def derivation(step: Any, key: str) -> Any:
    """The derivation of ``key`` in force for ``step`` (the last one)."""
    return [d for d in step.derivations if d.key == key][-1]


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A cold plan, its real run, and the plan compiled after it."""
    project = tmp_path_factory.mktemp("history")
    tkplan(project, "compile", *WORDS, "-o", "cold.json")
    ran = tkplan(project, "run", "cold.json", "--out", "run")
    run_id = re.search(r"recorded as run (\S+) in", ran.stderr).group(1)  # type: ignore[union-attr]
    warm = tkplan(project, "compile", *WORDS, "-o", "warm.json")
    return {"project": project, "cold": read_plan(project / "cold.json"), "warm": read_plan(project / "warm.json"),
            "ran": ran, "run": run_id, "results": results(project / "run"), "compiled": warm}


class TestASecondCompile:
    def test_each_step_expects_what_its_first_run_took(self, learned):
        """A one-thread step's expected single-thread work is its observed wall time, from the run it names."""
        for step in learned["warm"].steps:
            expected = derivation(step, "expected_cpu_s")
            assert expected.rule == "history"
            assert expected.value == pytest.approx(learned["results"][step.id]["wall_s"], abs=1e-3)
            assert learned["run"] in expected.why

    def test_orders_steps_longest_expected_first(self, learned):
        walls = forecast(learned["warm"]).steps
        order = learned["warm"].schedule.order
        assert [walls[s] for s in order] == sorted(walls.values(), reverse=True)
        assert sorted(order) == sorted(learned["cold"].schedule.order)

    def test_sizes_memory_caps_from_the_observed_peaks(self, learned):
        headroom = learned["warm"].config["history"]["memory_headroom"]
        for step in learned["warm"].steps:
            peak = learned["results"][step.id]["peak_rss_mb"]
            assert step.limits.memory_cap_mb == math.ceil(peak * headroom)
            assert derivation(step, "memory_cap_mb").rule == "history"
            assert learned["run"] in derivation(step, "memory_cap_mb").why
        assert all(derivation(s, "memory_cap_mb").rule == "memory_share" for s in learned["cold"].steps)

    def test_the_threads_follow_the_expected_costs(self, learned):
        for step in learned["warm"].steps:
            assert derivation(step, "threads").rule == "history"

    def test_the_schedule_names_the_history_and_the_plan_hash_changes(self, learned):
        warm, cold = learned["warm"], learned["cold"]
        assert derivation(warm.schedule, "history").value == (learned["run"],)
        told = forecast(warm)
        assert derivation(warm.schedule, "expected_makespan_s").value == told.makespan
        assert derivation(warm.schedule, "lower_bound_s").value == told.lower_bound
        assert told.makespan >= told.lower_bound > 0
        assert warm.plan_hash != cold.plan_hash
        assert [s.digest for s in warm.steps] == [s.digest for s in cold.steps]  # the same work, planned anew

    def test_compile_prints_the_expected_makespan_and_the_lower_bound(self, learned):
        told = forecast(learned["warm"])
        out = learned["compiled"].stdout
        assert f"({told.makespan:.1f} s) from 1 earlier run(s), lower bound {told.lower_bound:.1f} s" in out
        assert "expected makespan" in tkplan(learned["project"], "compile", *WORDS, "--history", "none").stdout

    def test_a_run_of_a_cold_plan_says_it_had_no_expectation(self, learned):
        assert "no expectation: the plan was compiled without history" in learned["ran"].stdout
        assert f"history: 4 step(s) recorded as run {learned['run']}" in learned["ran"].stderr

    def test_a_run_of_a_learned_plan_ends_with_expected_against_actual(self, learned, tmp_path):
        project = learned["project"]
        shutil.copytree(project, tmp_path / "again", ignore=shutil.ignore_patterns("run", "runs"))
        expected = derivation(learned["warm"].schedule, "expected_makespan_s").value
        done = tkplan(tmp_path / "again", "run", "warm.json", "--out", "run2")
        last = done.stdout.strip().splitlines()[-1]
        assert re.fullmatch(rf"expected \d+:\d\d \({expected:.1f} s\), actual \d+:\d\d \([\d.]+ s\): [+-]\d+ %", last)
        listed = tkplan(tmp_path / "again", "history", "list").stdout
        assert "2 run(s)" in listed and f"{expected:.1f}" in listed


class TestOtherData:
    def test_more_rows_scale_the_expectation_by_rows_times_features(self, learned):
        """Twice the timestamps: the same families on other data, each expectation doubled."""
        project = learned["project"]
        longer = (*WORDS[:2], "data.synthetic.timestamps=240")
        tkplan(project, "compile", *longer, "-o", "longer.json")
        plan = read_plan(project / "longer.json")
        for step in plan.steps:
            family_runs = [r for sid, r in learned["results"].items() if sid.split(".")[0] == step.family]
            expected = derivation(step, "expected_cpu_s")
            assert "on other data" in expected.why and learned["run"] in expected.why
            walls = sorted(r["wall_s"] for r in family_runs)
            assert expected.value == pytest.approx(2 * (walls[0] + walls[1]) / 2, rel=1e-3)
            assert derivation(step, "memory_cap_mb").rule == "memory_share"  # peaks are not scaled: other work


class TestColdPlans:
    def test_history_none_gives_the_cold_plan_byte_for_byte(self, learned):
        project = learned["project"]
        tkplan(project, "compile", *WORDS, "--history", "none", "-o", "none.json")
        assert (project / "none.json").read_bytes() == (project / "cold.json").read_bytes()

    def test_a_history_that_matches_nothing_changes_nothing(self, learned):
        project = learned["project"]
        other = ("campaign.families=[gmm_regime]", *WORDS[1:])
        tkplan(project, "compile", *other, "-o", "with.json")
        tkplan(project, "compile", *other, "--history", "none", "-o", "without.json")
        assert (project / "with.json").read_bytes() == (project / "without.json").read_bytes()

    def test_runs_on_other_hardware_are_kept_apart(self, learned):
        project = learned["project"]
        spec = str(REPO / "tests" / "specs" / "h100_16core.yaml")
        there = tkplan(project, "compile", *WORDS, "--hardware", spec, "-o", "there.json")
        tkplan(project, "compile", *WORDS, "--hardware", spec, "--history", "none", "-o", "there_cold.json")
        assert (project / "there.json").read_bytes() == (project / "there_cold.json").read_bytes()
        assert "the history store holds 1 run(s) of other hardware: kept apart" in there.stdout


class TestOom:
    def test_a_step_that_ended_oom_gets_a_larger_cap_next_time(self, tmp_path):
        """A real step over its 150 MB cap is killed; the next compile gives it oom_growth × what it reached."""
        project = write_project(tmp_path / "hog", {"hogs": family("allocate", allocate_mb=600)}, memory_cap_gb=0.15)
        tkplan(project, "compile", "-o", "first.json")
        tkplan(project, "run", "first.json", "--out", "run", code=1)
        ended = next(iter(results(project / "run").values()))
        assert ended["status"] == "oom"
        tkplan(project, "compile", "-o", "second.json")
        first, second = read_plan(project / "first.json").steps[0], read_plan(project / "second.json").steps[0]
        before = max(ended["peak_rss_mb"], first.limits.memory_cap_mb)
        assert second.limits.memory_cap_mb == math.ceil(before * 2.0) > first.limits.memory_cap_mb
        assert derivation(second, "memory_cap_mb").rule == "history"
        assert "ended oom" in derivation(second, "memory_cap_mb").why


class TestHistoryCommand:
    @pytest.fixture()
    def store(self, learned, tmp_path):
        """A copy of the learned store, to prune."""
        copy = tmp_path / "history.sqlite"
        shutil.copy(learned["project"] / ".cache" / "history.sqlite", copy)
        return copy

    def test_list_shows_the_run(self, learned, store):
        out = tkplan(learned["project"], "history", "--store", str(store), "list").stdout
        assert f"history store {store}: 1 run(s)" in out
        row = next(line for line in out.splitlines() if line.startswith(learned["run"]))
        assert learned["cold"].plan_hash[:12] in row and "4 ok" in row

    def test_show_lists_a_steps_observations(self, learned, store):
        step = learned["cold"].steps[0]
        out = tkplan(learned["project"], "history", "--store", str(store), "show", step.id).stdout
        row = next(line for line in out.splitlines() if line.startswith(learned["run"]))
        result = learned["results"][step.id]
        assert step.digest[:12] in row and " ok " in row and f"{result['wall_s']:.1f}" in row and "1200×32" in row
        by_digest = tkplan(learned["project"], "history", "--store", str(store), "show", step.digest[:10]).stdout
        assert by_digest == out

    def test_forget_a_family(self, learned, store):
        project = learned["project"]
        done = tkplan(project, "history", "--store", str(store), "forget", "--family", "lightgbm")
        assert done.stdout.strip() == f"forgot 2 observation(s) in {store}"
        gone = tkplan(project, "history", "--store", str(store), "show", "lightgbm.fwd_ret_5m.s42", code=2)
        assert "no observation of 'lightgbm.fwd_ret_5m.s42'" in gone.stderr
        assert "2 ok" in tkplan(project, "history", "--store", str(store), "list").stdout

    def test_forget_by_step_digest_and_age_and_all(self, learned, store):
        project = learned["project"]
        step = learned["cold"].steps[0]
        assert "forgot 1 " in tkplan(project, "history", "--store", str(store), "forget", "--step",
                                     step.digest[:8]).stdout
        assert "forgot 0 " in tkplan(project, "history", "--store", str(store), "forget", "--older-than",
                                     "1d").stdout
        assert "forgot 3 " in tkplan(project, "history", "--store", str(store), "forget", "--all").stdout
        assert "no runs" in tkplan(project, "history", "--store", str(store), "list").stdout

    def test_forget_needs_to_be_told_what(self, learned, store):
        project = learned["project"]
        assert "say what to forget" in tkplan(project, "history", "--store", str(store), "forget", code=2).stderr
        bad = tkplan(project, "history", "--store", str(store), "forget", "--older-than", "soon", code=2)
        assert "'soon' is not an age" in bad.stderr


class TestABrokenStore:
    def test_compile_warns_and_plans_cold(self, learned):
        project = learned["project"]
        (project / "broken.sqlite").write_bytes(b"this is not a database, just bytes" * 100)
        done = tkplan(project, "compile", *WORDS, "--history", "broken.sqlite", "-o", "broken.json")
        assert "warning: history store" in done.stderr and "damaged or not a history store" in done.stderr
        assert "compiled without history" in done.stderr
        assert (project / "broken.json").read_bytes() == (project / "cold.json").read_bytes()

    def test_history_commands_exit_8(self, learned):
        project = learned["project"]
        (project / "broken.sqlite").write_bytes(b"this is not a database, just bytes" * 100)
        done = tkplan(project, "history", "--store", "broken.sqlite", "list", code=8)
        assert "damaged or not a history store" in done.stderr and "Traceback" not in done.stderr

    def test_a_run_goes_on_and_says_so(self, tmp_path):
        project = write_project(tmp_path / "p", {"works": family("ok")}, history={"store": "broken.sqlite"})
        (project / "broken.sqlite").write_bytes(b"this is not a database, just bytes" * 100)
        tkplan(project, "compile", "-o", "plan.json")
        done = tkplan(project, "run", "plan.json", "--out", "run")
        assert "warning: this run's observations were not recorded" in done.stderr
        assert "1 steps: 1 ok" in done.stdout
        assert (project / "broken.sqlite").read_bytes().startswith(b"this is not a database")


class TestSweep:
    def test_a_sweep_prints_the_expected_total_of_its_distinct_steps(self, learned):
        done = tkplan(learned["project"], "sweep", *WORDS[:2], "data.synthetic.timestamps=120,240")
        total = re.search(r"expected total \d+:\d\d \(([\d.]+) s\), lower bound ([\d.]+) s", done.stdout)
        assert total is not None, done.stdout
        one = derivation(learned["warm"].schedule, "expected_makespan_s").value
        assert float(total.group(1)) > one  # the learned point's steps, and twice their work at 240 timestamps
        assert float(total.group(1)) >= float(total.group(2))


class TestExplain:
    def test_explain_shows_each_expectation_and_the_run_it_came_from(self, learned):
        out = tkplan(learned["project"], "explain", "expected_cpu_s", *WORDS).stdout
        for step in learned["warm"].steps:
            row = next(line for line in out.splitlines() if line.strip().startswith(step.id))
            assert "history" in row and learned["run"] in row
        cold = tkplan(learned["project"], "explain", "expected_cpu_s", *WORDS, "--history", "none").stdout
        assert "the plan was compiled without history" in cold
