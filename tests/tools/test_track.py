"""``tkplan track`` and ``tkplan run --track`` against a real MLflow SQLite store in the run directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.projects import (
    TKPLAN,
    compile_project,
    family,
    save_plan,
    write_project,
)
from tests.tools.runs import FAMILIES, SEEDS
from tkplan.errors import ExtraMissingError
from tkplan.tools.report import load_run
from tkplan.tools.track import STATE_FILE, StudySyncReport, default_uri, sync
from tkplan.tools.track._batch import Limits, batches

pytestmark = pytest.mark.slow  # a real small run, real MLflow
TUNE_PROFILES = Path(__file__).parents[1] / "fixtures" / "profiles" / "tune"
mlflow = pytest.importorskip("mlflow", reason="the extra 'track' (mlflow-skinny) is not installed")


def store(run_dir: Path) -> Any:
    """An MLflow client on the run directory's own store."""
    return mlflow.MlflowClient(tracking_uri=default_uri(run_dir))


def all_runs(run_dir: Path) -> list:
    client = store(run_dir)
    experiments = client.search_experiments()
    return list(client.search_runs([e.experiment_id for e in experiments], max_results=1000))


def tracked_copy(source: Path, copy: Path, says: str) -> Path:
    """A copy of a run or study directory (links kept), tracked once through the command line, which says ``says``."""
    shutil.copytree(source, copy, symlinks=True)
    done = subprocess.run([*TKPLAN, "track", str(copy)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert says in done.stdout
    return copy


@pytest.fixture(scope="module")
def synced(small_run, tmp_path_factory) -> Path:
    """A copy of the small run, synced once through the command line."""
    steps = len(FAMILIES) * len(SEEDS)
    return tracked_copy(small_run, tmp_path_factory.mktemp("tracked") / "run", f"{steps} steps: {steps} created")


class TestSync:
    def test_a_parent_run_with_the_plan_and_a_nested_run_per_step(self, synced):
        view = load_run(synced)
        runs = all_runs(synced)
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert len(parents) == 1 and len(runs) == 1 + len(view.plan.steps)
        parent = parents[0]
        assert parent.data.tags["plan_hash"] == view.plan.plan_hash and parent.info.status == "FAILED"
        assert parent.data.params["run.name"] == view.plan.config["run"]["name"]
        assert parent.data.params["campaign.seeds"] == json.dumps(list(SEEDS))
        client = store(synced)
        assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"plan.json", "summary.json"}
        children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
        assert set(children) == set(view.plan.schedule.order)

    def test_a_step_run_has_its_params_metrics_derivations_and_files(self, synced):
        view = load_run(synced)
        step = next(s for s in view.plan.steps if s.family == "lightgbm")
        run = next(r for r in all_runs(synced) if r.info.run_name == step.id)
        assert run.info.status == "FINISHED"
        assert run.data.params["seed"] == str(step.seed) and run.data.params["n_estimators"] == "20"
        assert run.data.metrics["test.rank_ic"] == pytest.approx(view.results[step.id].metrics["test"]["rank_ic"])
        assert run.data.metrics["usage.peak_rss_mb"] > 0
        assert run.data.tags["derived.threads"].endswith(")") and run.data.tags["tkplan.status"] == "ok"
        files = {a.path for a in store(synced).list_artifacts(run.info.run_id)}
        assert {"model.txt", "predictions.val.npy", "predictions.test.npy", "result.json"} <= files
        assert (synced / "mlartifacts").is_dir()  # inside the run directory

    def test_a_network_step_has_its_validation_loss_per_epoch(self, synced):
        step = next(s for s in load_run(synced).plan.steps if s.family == "mlp")
        run = next(r for r in all_runs(synced) if r.info.run_name == step.id)
        history = store(synced).get_metric_history(run.info.run_id, "curve.val_loss")
        assert [m.step for m in history] == [1, 2, 3]

    def test_a_failed_step_is_tracked_with_its_failure(self, synced):
        step = next(s for s in load_run(synced).plan.steps if s.family == "broken")
        run = next(r for r in all_runs(synced) if r.info.run_name == step.id)
        assert run.info.status == "FAILED" and run.data.tags["tkplan.status"] == "failed"
        assert run.data.tags["tkplan.detail"] == f"ValueError: bad input in {step.id}"
        error = store(synced).download_artifacts(run.info.run_id, "error.txt", str(synced.parent))
        assert "Traceback" in Path(error).read_text()

    def test_syncing_again_creates_nothing(self, synced):
        before = {r.info.run_id for r in all_runs(synced)}
        report = sync(synced)
        assert report.created == () and report.updated == () and report.parent == "unchanged"
        assert len(report.unchanged) == len(FAMILIES) * len(SEEDS)
        assert {r.info.run_id for r in all_runs(synced)} == before

    def test_a_changed_step_is_updated_in_its_own_run(self, synced):
        view = load_run(synced)
        step_id = next(s.id for s in view.plan.steps if s.family == "lightgbm")
        result_file = synced / "steps" / step_id / "result.json"
        result = json.loads(result_file.read_text())
        result["metrics"]["test"]["rank_ic"] = 0.5  # as a re-run of the step would leave it
        result["attempt"] = 2
        result_file.write_text(json.dumps(result))
        state = json.loads((synced / STATE_FILE).read_text())
        run_id = state["stores"][default_uri(synced)]["steps"][step_id]["run_id"]
        before = len(all_runs(synced))
        report = sync(synced)
        assert report.updated == (step_id,) and report.created == ()
        assert len(all_runs(synced)) == before
        run = store(synced).get_run(run_id)
        assert run.data.metrics["test.rank_ic"] == 0.5 and run.data.tags["tkplan.attempt"] == "2"


def tune(root: Path, *words: str) -> None:
    """``tkplan tune ci_fast WORDS… --out study -q`` in ``root``, a directory holding the study profiles."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
    done = subprocess.run([*TKPLAN, "tune", "ci_fast", *words, "--out", "study", "-q"], cwd=root, capture_output=True,
                          text=True, timeout=600, env={**env, "TKPLAN_CACHE_DIR": str(root / ".cache")})
    assert done.returncode == 0, done.stderr


def study_of(tmp_path_factory: pytest.TempPathFactory, profile: str) -> Path:
    """A real study (``tkplan tune`` on ``profile``), not synced yet: its study directory."""
    pytest.importorskip("optuna")
    pytest.importorskip("lightgbm")
    root = tmp_path_factory.mktemp("study")
    shutil.copytree(TUNE_PROFILES, root, dirs_exist_ok=True)
    tune(root, profile)
    return root / "study"


def study_json(study_dir: Path) -> dict:
    return json.loads((study_dir / "study.json").read_text())


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """Three LightGBM trials, two at once (``lightgbm_study.yaml``)."""
    return study_of(tmp_path_factory, "lightgbm_study.yaml")


@pytest.fixture(scope="module")
def tracked_study(tuned, tmp_path_factory) -> Path:
    """A copy of the study, tracked once through the command line."""
    return tracked_copy(tuned, tmp_path_factory.mktemp("tracked_study") / "study",
                        "(created); 3 trials: 3 created, 0 updated, 0 unchanged; 3 steps: 3 created")


class TestStudy:
    def test_a_study_run_with_a_nested_run_per_trial_and_the_trials_steps_in_them(self, tracked_study):
        study = study_json(tracked_study)
        runs = all_runs(tracked_study)
        top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert len(top) == 1
        run = top[0]
        assert run.info.run_name == "study-ci_fast" and run.info.status == "FINISHED"
        assert {k: run.data.tags[k] for k in ("tkplan.kind", "tkplan.study", "tkplan.metric", "tkplan.direction",
                                              "tkplan.best_trial")} == {
            "tkplan.kind": "study", "tkplan.study": "ci_fast", "tkplan.metric": "val.rank_ic",
            "tkplan.direction": "maximize", "tkplan.best_trial": str(study["best"]["number"])}
        assert run.data.metrics["best_value"] == pytest.approx(study["best"]["value"])
        assert run.data.metrics["trials.complete"] == 3 and run.data.metrics["trials.pruned"] == 0
        assert [a.path for a in store(tracked_study).list_artifacts(run.info.run_id)] == ["study.json"]
        trials = {r.data.tags["tkplan.trial"]: r for r in runs
                  if r.data.tags.get("mlflow.parentRunId") == run.info.run_id}
        assert sorted(trials) == ["0", "1", "2"]
        for trial in study["trials"]:
            trial_run = trials[str(trial["number"])]
            assert trial_run.info.run_name == f"trial-{trial['number']:04d}" and trial_run.info.status == "FINISHED"
            assert trial_run.data.tags["tkplan.state"] == "COMPLETE" and trial_run.data.tags["tkplan.kind"] == "trial"
            assert trial_run.data.tags["plan_hash"] == trial["plan_hash"]
            assert trial_run.data.metrics["value"] == pytest.approx(trial["value"])
            for key, value in trial["params"].items():
                assert trial_run.data.params[key] == json.dumps(value)
            steps = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == trial_run.info.run_id]
            assert [s.info.run_name for s in steps] == list(trial["steps"])
            step = steps[0]
            assert step.data.params["num_leaves"] == str(trial["params"]["families.lightgbm.num_leaves"])
            assert step.data.metrics["val.rank_ic"] == pytest.approx(trial["value"])
            assert "model.txt" in {a.path for a in store(tracked_study).list_artifacts(step.info.run_id)}
        assert len(runs) == 1 + 3 + 3
        assert (tracked_study / STATE_FILE).is_file() and (tracked_study / "mlartifacts").is_dir()

    def test_tracking_again_creates_no_run_and_finds_every_trial_unchanged(self, tracked_study):
        before = {r.info.run_id for r in all_runs(tracked_study)}
        report = sync(tracked_study)
        assert isinstance(report, StudySyncReport) and report.study == "unchanged"
        assert report.trials == {0: "unchanged", 1: "unchanged", 2: "unchanged"}
        assert all(r.created == r.updated == () and len(r.unchanged) == 1 for r in report.runs.values())
        assert {r.info.run_id for r in all_runs(tracked_study)} == before

    def test_after_resume_only_the_new_trials_are_created(self, tuned, tracked_study):
        sync(tuned)  # the study as it was, tracked (the copy tracked_study stays as it is)
        runs = {r.info.run_id for r in all_runs(tuned)}
        tune(tuned.parent, "lightgbm_study.yaml", "--resume", "--trials", "4")
        report = sync(tuned)
        assert report.study == "updated"
        assert report.trials == {0: "unchanged", 1: "unchanged", 2: "unchanged", 3: "created"}
        assert report.runs[3].created == tuple(study_json(tuned)["trials"][3]["steps"])
        added = [r for r in all_runs(tuned) if r.info.run_id not in runs]
        assert sorted(r.info.run_name for r in added) == ["lightgbm.fwd_ret_5m.s42", "trial-0003"]
        study_run = store(tuned).get_run(report.study_run_id)
        assert study_run.data.metrics["trials.complete"] == 4 and study_run.data.tags["tkplan.trials"] == "4"

    def test_a_pruned_trial_is_tracked_killed_with_its_partial_curve(self, tmp_path_factory):
        study_dir = study_of(tmp_path_factory, "pruning.yaml")
        pruned = next(t for t in study_json(study_dir)["trials"] if t["state"] == "PRUNED")
        report = sync(study_dir)
        assert report.trials == dict.fromkeys(range(4), "created")
        run = store(study_dir).get_run(report.runs[pruned["number"]].parent_run_id)
        assert run.info.status == "KILLED" and run.data.tags["tkplan.state"] == "PRUNED"
        assert run.data.tags["tkplan.detail"] == pruned["detail"] and "value" not in run.data.metrics
        step = next(r for r in all_runs(study_dir) if r.data.tags.get("mlflow.parentRunId") == run.info.run_id)
        assert step.info.status == "KILLED" and step.data.tags["tkplan.status"] == "pruned"

    def test_a_trial_the_planner_could_not_compile_is_a_failed_run_with_no_steps(self, tmp_path_factory):
        study_dir = study_of(tmp_path_factory, "unplanned.yaml")
        failed = study_json(study_dir)["trials"][1]
        assert failed["state"] == "FAIL" and failed["directory"] == ""
        report = sync(study_dir)
        assert report.trials == {0: "created", 1: "created"} and list(report.runs) == [0]
        runs = all_runs(study_dir)
        run = next(r for r in runs if r.data.tags.get("tkplan.trial") == "1")
        assert run.info.status == "FAILED" and run.data.tags["mlflow.parentRunId"] == report.study_run_id
        assert run.data.tags["tkplan.detail"].startswith("not planned: ") and "memory_cap_gb" in run.data.tags[
            "tkplan.detail"]
        assert run.data.params == {"limits.memory_cap_gb": "1000000"}
        assert [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id] == []
        assert len(runs) == 1 + 2 + 1
        again = sync(study_dir)
        assert again.trials == {0: "unchanged", 1: "unchanged"} and len(all_runs(study_dir)) == len(runs)


class TestBatches:
    def test_every_value_goes_in_calls_within_mlflows_limits(self):
        limits = Limits()
        metrics, params, tags = list(range(2500)), [f"p{i}" for i in range(250)], [f"t{i}" for i in range(130)]
        calls = list(batches(metrics, params, tags, limits))
        for m, p, t in calls:
            assert len(m) <= limits.metrics and len(p) <= limits.params_tags and len(t) <= limits.params_tags
            assert len(m) + len(p) + len(t) <= limits.entities
        assert [x for m, _, _ in calls for x in m] == metrics
        assert [x for _, p, _ in calls for x in p] == params and [x for _, _, t in calls for x in t] == tags
        assert len(calls) == 3


class TestLive:
    def test_run_with_track_logs_as_it_goes_and_a_later_sync_adds_nothing(self, tmp_path):
        project = write_project(tmp_path / "project", {"works": family("ok"), "raises": family("raise_error")})
        plan = save_plan(compile_project(project), tmp_path / "plan.json")
        run_dir = tmp_path / "run"
        done = subprocess.run([*TKPLAN, "run", str(plan), "--out", str(run_dir), "--track"], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 1, done.stderr
        assert "warning" not in done.stderr
        runs = all_runs(run_dir)
        assert sorted(r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags) == [
            "raises.y.s42", "works.y.s42"]
        assert {r.info.status for r in runs} == {"FINISHED", "FAILED"}  # the parent ended too
        works = next(r for r in runs if r.info.run_name == "works.y.s42")
        assert works.data.metrics["score"] == 1.0
        report = sync(run_dir)
        assert report.created == () and report.updated == () and report.parent == "unchanged"


class TestRefusals:
    def test_without_mlflow_the_error_says_what_to_install(self, small_run, monkeypatch):
        monkeypatch.setitem(sys.modules, "mlflow", None)
        with pytest.raises(ExtraMissingError, match=r"tracking needs MLflow, .* pip install 'tkplan\[track\]'"):
            sync(small_run)

    def test_an_unreachable_store_is_exit_8_with_a_message(self, small_run, tmp_path):
        run = shutil.copytree(small_run, tmp_path / "run")
        (tmp_path / "a_file").write_text("")
        done = subprocess.run([*TKPLAN, "track", str(run), "--uri", f"sqlite:///{tmp_path}/a_file/x.db"],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 8 and "MLflow store sqlite:///" in done.stderr
        assert "Traceback" not in done.stderr

    def test_a_store_of_ones_own_keeps_the_artifacts_in_the_run_directory(self, small_run, tmp_path):
        run = shutil.copytree(small_run, tmp_path / "run")
        (tmp_path / "cwd").mkdir()
        done = subprocess.run([*TKPLAN, "track", str(run), "--uri", f"sqlite:///{tmp_path}/team.db"],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path / "cwd")
        assert done.returncode == 0, done.stderr
        assert list((tmp_path / "cwd").iterdir()) == [] and (run / "mlartifacts").is_dir()


    def test_a_damaged_study_file_is_exit_5_with_its_name(self, tmp_path):
        (tmp_path / "study.json").write_text(json.dumps({"name": "s", "metric": "rmse", "direction": "minimize",
                                                         "trials": [{"state": "COMPLETE"}]}))
        done = subprocess.run([*TKPLAN, "track", str(tmp_path)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 5 and f"{tmp_path / 'study.json'}: not a study file" in done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / STATE_FILE).exists()

def test_a_sync_that_lost_its_state_file_finds_its_runs_again(synced):
    before = {r.info.run_id for r in all_runs(synced)}
    (synced / STATE_FILE).unlink()
    report = sync(synced)
    assert report.created == () and len(report.updated) == len(FAMILIES) * len(SEEDS)
    assert {r.info.run_id for r in all_runs(synced)} == before
