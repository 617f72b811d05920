"""``tkplan tune`` from the command line: real Optuna, real LightGBM fits on the CI panel, real child processes.

Exit codes: 0 the study ran; 3 an invalid search space (every problem located where it was written); 5 a study
directory refused (a study there without ``--resume``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tkplan.runtime import read_journal
from tkplan.runtime._watchdog import group_members

pytest.importorskip("optuna")
pytest.importorskip("lightgbm")

TESTS = Path(__file__).parent
PROFILES = TESTS / "fixtures" / "profiles" / "tune"
TKPLAN = [sys.executable, "-c", "from tkplan.cli import run; run()"]


@pytest.fixture()
def project(cli, tmp_path):
    """The ``cli`` fixture, run in a directory that holds the study profiles."""
    shutil.copytree(PROFILES, tmp_path, dirs_exist_ok=True)
    return cli


def journal(study_dir: Path) -> list[dict]:
    return read_journal(study_dir / "journal.jsonl")


def trial_events(study_dir: Path) -> list[tuple[str, int]]:
    return [(r["event"], r["trial"]) for r in journal(study_dir) if r["event"].startswith("trial_")]


def test_a_search_space_that_does_not_fit_its_keys_is_refused_each_problem_where_it_was_written(project):
    result = project("tune", "ci_fast", "bad_space.yaml")
    assert result.exit_code == 3, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert lines[0] == "error: 5 problems in the configuration:"
    assert lines[1:] == [
        "- bad_space.yaml:3:33: families.lightgbm.num_leafs is not a key of the configuration "
        "@ search.families.lightgbm.num_leafs (did you mean 'num_leaves'?)",
        "- bad_space.yaml:4:33: families.lightgbm.max_depth takes integer values, not a float range "
        "@ search.families.lightgbm.max_depth (search it with {int: [low, high]})",
        "- bad_space.yaml:5:40: the range [50, 10] is empty: low is above high "
        "@ search.families.lightgbm.min_data_in_leaf (write [low, high] with low ≤ high)",
        "- bad_space.yaml:6:40: 1.5: must be ≤ 1; got 1.5 @ search.families.lightgbm.feature_fraction",
        "- bad_space.yaml:7:37: a log scale needs low > 0; got 0.0 @ search.families.lightgbm.learning_rate "
        "(raise low, or drop log)",
    ]
    assert not Path("runs").exists()


def test_a_profile_with_a_search_space_compiles_without_it(project):
    result = project("compile", "ci_fast", "lightgbm_study.yaml", "-o", "plan.json")
    assert result.exit_code == 0, result.output
    plan = json.loads(Path("plan.json").read_text())
    assert {"search", "tune"} & set(plan["config"]) == set()
    assert [k for k in plan["provenance"] if k.startswith(("search.", "tune."))] == []


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """Three LightGBM trials, two at once, through the CLI in a project directory; ``--emit-best`` too."""
    root = tmp_path_factory.mktemp("study")
    shutil.copytree(PROFILES, root, dirs_exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
    done = subprocess.run([*TKPLAN, "tune", "ci_fast", "lightgbm_study.yaml", "--out", "study", "--emit-best",
                           "best.yaml"], cwd=root, env={**env, "TKPLAN_CACHE_DIR": str(root / ".cache")},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return root, done


def test_a_study_runs_each_trial_as_its_own_plan_and_records_it(small_study):
    root, done = small_study
    study = json.loads((root / "study" / "study.json").read_text())
    assert (study["name"], study["metric"], study["direction"], study["split"]) == (
        "ci_fast", "rank_ic", "maximize", "val")
    assert [(t["number"], t["state"]) for t in study["trials"]] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    best = max(study["trials"], key=lambda t: t["value"])
    assert study["best"]["number"] == best["number"]
    hashes = set()
    for trial in study["trials"]:
        plan = json.loads((root / "study" / trial["directory"] / "plan.json").read_text())
        assert plan["plan_hash"] == trial["plan_hash"]
        hashes.add(plan["plan_hash"])
        step = plan["steps"][0]
        assert step["params"]["num_leaves"] == trial["params"]["families.lightgbm.num_leaves"]
        assert step["params"]["learning_rate"] == trial["params"]["families.lightgbm.learning_rate"]
        assert plan["provenance"]["families.lightgbm.num_leaves"][-1]["source"] == f"tune: trial {trial['number']}"
        assert step["resources"]["threads"] == 1  # two trials at once share the two threads of the budget
        assert step["isolation"]["mode"] == "inproc"
        result = json.loads((root / "study" / trial["directory"] / "steps" / step["id"] / "result.json").read_text())
        assert result["status"] == "ok"
        assert result["metrics"]["val"]["rank_ic"] == pytest.approx(trial["value"])
        assert (root / "study" / trial["directory"] / "steps" / step["id"] / "model.txt").is_file()  # kept as trained
    assert len(hashes) == 3
    assert "study ci_fast: 3 trials (3 complete), maximize val rank_ic" in done.stdout


def test_a_trial_recompiles_to_its_steps_from_its_recorded_command_line(small_study, cli):
    root, _ = small_study
    study = json.loads((root / "study" / "study.json").read_text())
    trial = study["trials"][1]
    plan = json.loads((root / "study" / trial["directory"] / "plan.json").read_text())
    words = plan["inputs"]["cli"]
    assert words[:2] == ["ci_fast", "lightgbm_study.yaml"]
    assert {w.partition("=")[0] for w in words[2:]} == {
        "isolation.force", "run.threads", "families.lightgbm.num_leaves", "families.lightgbm.learning_rate"}
    os.chdir(root)
    result = cli("compile", *plan["inputs"]["cli"], "-o", str(root / "again.json"))
    assert result.exit_code == 0, result.output
    again = json.loads((root / "again.json").read_text())
    assert [s["digest"] for s in again["steps"]] == [s["digest"] for s in plan["steps"]]
    assert again["steps"][0]["resources"] == plan["steps"][0]["resources"]
    # a trial of one CPU step runs in the warm worker of its slot, and says why
    assert plan["steps"][0]["isolation"]["mode"] == again["steps"][0]["isolation"]["mode"] == "inproc"
    assert "a warm worker per trial slot" in plan["steps"][0]["isolation"]["reason"]


def test_emit_best_writes_a_profile_that_compiles_to_the_best_trials_work(small_study, cli):
    root, done = small_study
    study = json.loads((root / "study" / "study.json").read_text())
    best = study["best"]
    text = (root / "best.yaml").read_text()
    assert text.startswith(f"# tune: study ci_fast, trial {best['number']} (val rank_ic ")
    os.chdir(root)
    result = cli("compile", "best.yaml", "-o", str(root / "best.json"))
    assert result.exit_code == 0, result.output
    compiled = json.loads((root / "best.json").read_text())["steps"][0]
    trained = json.loads((root / "study" / best["directory"] / "plan.json").read_text())["steps"][0]
    assert compiled["digest"] == trained["digest"]  # the same work as the trial, whose model is kept
    assert compiled["params"]["num_leaves"] == best["params"]["families.lightgbm.num_leaves"]
    assert f"best trial {best['number']} written to best.yaml" in done.stderr


def test_report_on_a_study_shows_its_trials_best_and_importances(small_study, cli):
    root, _ = small_study
    os.chdir(root)
    result = cli("report", "study")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "study ci_fast: 3 trials (3 complete), maximize val rank_ic"
    assert lines[1].startswith("best: trial ")
    assert lines[3].split() == ["trial", "state", "value", "wall", "s", "learning_rate", "num_leaves", "note"]
    assert [line.split()[:2] for line in lines[5:8]] == [["0", "complete"], ["1", "complete"], ["2", "complete"]]
    # the importances come from the study's storage when the report asks: the study did not spend time on them
    assert "importances" not in json.loads((root / "study" / "study.json").read_text())
    importance = next(line for line in lines if line.startswith("importance: "))
    weights = dict(part.rsplit(" ", 1) for part in importance.removeprefix("importance: ").split(", "))
    assert set(weights) == {"families.lightgbm.num_leaves", "families.lightgbm.learning_rate"}
    assert sum(float(w) for w in weights.values()) == pytest.approx(1.0, abs=0.02)
    assert "its best trial (study/trials/" in result.output
    html = cli("report", "study", "--format", "html", "-o", str(root / "report.html"))
    assert html.exit_code == 0, html.output
    page = (root / "report.html").read_text()
    assert "Optimisation history" in page and "<h3>Trials</h3>" in page


def test_a_study_says_its_expected_total_and_teaches_the_next_one_what_its_trials_took(small_study):
    root, done = small_study
    # the first study on this machine: no timings yet, relative family costs
    assert "expected total (without pruning) " in done.stderr and "cost units" in done.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
    again = subprocess.run([*TKPLAN, "tune", "ci_fast", "lightgbm_study.yaml", "--out", "study_again", "--trials",
                            "1"], cwd=root, env={**env, "TKPLAN_CACHE_DIR": str(root / ".cache")},
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    told = next(line for line in again.stderr.splitlines() if line.startswith("expected total (without pruning) "))
    assert " s), lower bound " in told and "× the bound" in told  # seconds now
    trial = json.loads((root / "study_again" / "study.json").read_text())["trials"][0]
    plan = json.loads((root / "study_again" / trial["directory"] / "plan.json").read_text())
    costs = [d for d in plan["steps"][0]["derivations"] if d["key"] == "expected_cpu_s"]
    assert costs and costs[0]["rule"] == "history"  # the first study's three trials, on the same data
    plain = subprocess.run([*TKPLAN, "tune", "ci_fast", "lightgbm_study.yaml", "--out", "study_cold", "--trials",
                            "1", "--history", "none", "-q"], cwd=root,
                           env={**env, "TKPLAN_CACHE_DIR": str(root / ".cache")}, capture_output=True, text=True,
                           timeout=600)
    assert plain.returncode == 0, plain.stderr
    trial = json.loads((root / "study_cold" / "study.json").read_text())["trials"][0]
    plan = json.loads((root / "study_cold" / trial["directory"] / "plan.json").read_text())
    assert [d for d in plan["steps"][0]["derivations"] if d["rule"] == "history"] == []


def test_a_study_directory_is_not_run_again_without_resume(small_study, cli):
    root, _ = small_study
    os.chdir(root)
    result = cli("tune", "ci_fast", "lightgbm_study.yaml", "--out", "study")
    assert result.exit_code == 5
    assert "already holds a study; pass --resume to continue it" in result.output


def test_a_pruned_trial_is_stopped_mid_training_and_its_threads_go_to_the_next_trial_at_once(project, tmp_path):
    result = project("tune", "ci_fast", "pruning.yaml", "--out", "study")
    assert result.exit_code == 0, result.output
    study = json.loads((tmp_path / "study" / "study.json").read_text())
    assert [t["state"] for t in study["trials"]] == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"]
    events = trial_events(tmp_path / "study")
    # trial 2 started when trial 0 ended; pruned, its threads went to trial 3 while the long trial 1 ran on
    assert events.index(("trial_finished", 2)) < events.index(("trial_started", 3)) < events.index(
        ("trial_finished", 1))
    pruned = study["trials"][2]
    step_dir = tmp_path / "study" / pruned["directory"] / "steps" / "lightgbm.fwd_ret_5m.s42"
    result_file = json.loads((step_dir / "result.json").read_text())
    assert result_file["status"] == "pruned"
    assert result_file["detail"].startswith("pruned at round ")
    curve = result_file["output"]["curve"]
    assert 1 <= len(curve) < 10 and [c["epoch"] for c in curve] == list(range(100, 100 * len(curve) + 1, 100))
    assert result_file["output"]["fit"]["trees"] < 1000  # it stopped boosting when told, far from its 4000 rounds
    assert pruned["detail"] == result_file["detail"]
    started = {r["trial"]: r for r in journal(tmp_path / "study") if r["event"] == "step_started"}
    assert started[3]["pid"] == started[2]["pid"]  # the warm worker of the pruned trial's slot ran the next one


def start_tune(root: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
    return subprocess.Popen([*TKPLAN, "tune", "ci_fast", "resume.yaml", "--out", "study", "-q", *args], cwd=root,
                            env={**env, "TKPLAN_CACHE_DIR": str(root / ".cache")}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def wait_for(predicate, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_kill_9_then_resume_keeps_finished_trials_and_asks_the_running_ones_again(tmp_path):
    shutil.copytree(PROFILES, tmp_path, dirs_exist_ok=True)
    study_dir = tmp_path / "study"
    tune = start_tune(tmp_path)

    def one_done_one_running() -> bool:
        if not (study_dir / "journal.jsonl").is_file():
            return False
        events = trial_events(study_dir)
        started = {n for e, n in events if e == "trial_started"}
        ended = {n for e, n in events if e == "trial_finished"}
        steps = [r for r in journal(study_dir) if r["event"] == "step_started" and r["trial"] not in ended]
        return len(ended) >= 1 and bool(started - ended) and bool(steps)

    wait_for(one_done_one_running)
    os.kill(tune.pid, signal.SIGKILL)
    tune.wait()
    records = journal(study_dir)
    ended = {r["trial"]: r for r in records if r["event"] == "trial_finished"}
    running = {r["trial"]: r for r in records if r["event"] == "trial_started" and r["trial"] not in ended}
    left = [r for r in records if r["event"] == "step_started" and r["trial"] in running]
    assert running and left

    resumed = subprocess.run([*TKPLAN, "tune", "ci_fast", "resume.yaml", "--out", "study", "--resume",
                              "--format", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                             env={**{k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")},
                                  "TKPLAN_CACHE_DIR": str(tmp_path / ".cache")})
    assert resumed.returncode == 0, resumed.stderr
    for record in left:  # what the killed study left running was killed, and only that
        assert group_members(record["pgid"], record["create_time"]) == []
    summary = json.loads(resumed.stdout)
    trials = {t["number"]: t for t in summary["trials"]}
    for number, record in ended.items():  # finished before the kill: kept as they were
        assert trials[number]["state"] == record["state"] and trials[number]["value"] == record["value"]
    # running at the kill: failed, and asked again with the values it had. A trial Optuna had asked but the
    # driver had not yet started is among them; killed while its values were being sampled, it had only some
    # (or none), and its retry samples the rest
    requeued = {r["trial"]: r for r in journal(study_dir) if r["event"] == "trial_requeued"}
    assert set(running) <= set(requeued)
    for number, record in requeued.items():
        assert trials[number]["state"] == "FAIL"
        again = [t for t in trials.values() if t["retry_of"] == number]
        assert len(again) == 1 and again[0]["state"] == "COMPLETE"
        assert record["params"].items() <= again[0]["params"].items()
        assert set(again[0]["params"]) == set(trials[min(ended)]["params"])  # every searched key has a value
        if number in running:  # started, so all its values were sampled: the retry has exactly them
            assert again[0]["params"] == record["params"] == running[number]["params"]
    counted = [t for t in trials.values() if t["number"] not in requeued]
    assert len(counted) == 4 and {t["state"] for t in counted} == {"COMPLETE"}  # none lost, none counted twice
    starts = [n for e, n in trial_events(study_dir) if e == "trial_started"]
    assert len(starts) == len(set(starts)) and set(starts) | set(requeued) == set(trials)
    assert journal(study_dir)[-1]["event"] == "study_finished"
