"""What ``tkplan run`` refuses, each with a message that says what to do: exit code 5, nothing run."""

from __future__ import annotations

import json
import subprocess
import time

import attrs
import pytest

import tkplan
from tkplan.errors import DriftError, PlanError, RunDirError
from tkplan.planner import CompileRequest, compile_plan, plan_to_json, probe
from tkplan.runtime import execute, read_journal
from tkplan.runtime._rundir import RunDir

from .projects import REPO, TKPLAN, compile_project, family, save_plan, write_project


@pytest.fixture()
def project(tmp_path):
    return write_project(tmp_path / "project", {"works": family("ok")})


def run_cli(*args, cwd=None):
    return subprocess.run([*TKPLAN, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_an_edited_plan_is_refused(project, tmp_path):
    plan_path = save_plan(compile_project(project), tmp_path / "plan.json")
    data = json.loads(plan_path.read_text())
    data["steps"][0]["limits"]["timeout_s"] = 99999
    plan_path.write_text(json.dumps(data))
    result = run_cli("run", plan_path, "--out", tmp_path / "run")
    assert result.returncode == 5
    assert "plan_hash does not match its content: the plan was edited after compiling" in result.stderr
    assert not (tmp_path / "run").exists()


class TestDrift:
    def drifted_plan(self, project):
        here = probe()
        there = attrs.evolve(here, cpus_logical=here.cpus_logical + 14, cpus_usable=here.cpus_usable + 14,
                             memory_mb=here.memory_mb * 4, memory_total_mb=here.memory_total_mb * 4)
        request = CompileRequest(cwd=project, env={}, hermetic=True)
        return compile_plan(request, there, "box.yaml", tkplan.__version__), there, here

    def test_a_drifted_machine_is_refused_with_a_readable_diff(self, project, tmp_path):
        plan, there, here = self.drifted_plan(project)
        with pytest.raises(DriftError) as refused:
            execute(plan, tmp_path / "run")
        assert refused.value.differences == (
            f"cpus_usable: plan {there.cpus_usable}, here {here.cpus_usable}",
            f"cpus_logical: plan {there.cpus_logical}, here {here.cpus_logical}",
            f"memory_mb: plan {there.memory_mb} MB, here {here.memory_mb} MB (more than 2% apart)",
            f"memory_total_mb: plan {there.memory_total_mb} MB, here {here.memory_total_mb} MB (more than 2% apart)",
        )
        assert "pass --allow-drift to run it anyway" in str(refused.value)
        assert not (tmp_path / "run").exists()

    def test_the_cli_exits_5_and_allow_drift_runs_it_anyway(self, project, tmp_path):
        plan, there, here = self.drifted_plan(project)
        plan_path = tmp_path / "plan.json"
        plan_path.write_text(plan_to_json(plan))
        refused = run_cli("run", plan_path, "--out", tmp_path / "run")
        assert refused.returncode == 5
        assert f"cpus_usable: plan {there.cpus_usable}, here {here.cpus_usable}" in refused.stderr
        allowed = run_cli("run", plan_path, "--out", tmp_path / "run", "--allow-drift")
        assert allowed.returncode == 0, allowed.stderr
        assert f"drift allowed: cpus_usable: plan {there.cpus_usable}" in allowed.stderr
        assert read_journal(tmp_path / "run" / "journal.jsonl")[0]["drift"][0].startswith("cpus_usable:")


class TestRunDirectory:
    def test_a_run_directory_in_use_is_refused_naming_the_holder(self, tmp_path):
        project = write_project(tmp_path / "project", {"sleeps": family("sleep_forever")})
        plan_path = save_plan(compile_project(project), tmp_path / "plan.json")
        first = subprocess.Popen([*TKPLAN, "run", str(plan_path), "--out", str(tmp_path / "run"), "-q"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not any(r["event"] == "step_started" for r in read_journal(tmp_path / "run" / "journal.jsonl")):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            second = run_cli("run", plan_path, "--out", tmp_path / "run", "--resume")
            assert second.returncode == 5
            assert f"is locked by another tkplan run (pid {first.pid})" in second.stderr
        finally:
            first.terminate()
            assert first.wait(timeout=30) == 143  # SIGTERM: running steps killed, journaled as interrupted
        assert read_journal(tmp_path / "run" / "journal.jsonl")[-1]["event"] == "run_interrupted"

    def test_the_lock_is_released_when_the_run_directory_closes(self, project, tmp_path):
        plan = compile_project(project)
        with RunDir.open(tmp_path / "run", plan, resume=False):
            with pytest.raises(RunDirError, match=r"is locked by another tkplan run \(pid \d+\)"):
                RunDir.open(tmp_path / "run", plan, resume=True)
        RunDir.open(tmp_path / "run", plan, resume=True).close()

    def test_a_finished_run_is_not_run_again(self, project, tmp_path):
        plan = compile_project(project)
        execute(plan, tmp_path / "run")
        again = execute(plan, tmp_path / "run")
        assert [r.status for r in again.results] == ["ok"]
        resumed = execute(plan, tmp_path / "run", resume=True)
        assert [r.status for r in resumed.results] == ["ok"]
        assert sum(r["event"] == "step_started" for r in read_journal(tmp_path / "run" / "journal.jsonl")) == 1

    def test_an_unfinished_run_needs_resume(self, project, tmp_path):
        plan = compile_project(project)
        with RunDir.open(tmp_path / "run", plan, resume=False) as rundir:
            rundir.journal.append("run_started", plan_hash=plan.plan_hash, pid=1, resume=False, drift=[])
        with pytest.raises(RunDirError, match=r"holds an unfinished run of this plan \(0 of 1 steps ended\); "
                                              "pass --resume to finish it, or --fresh"):
            execute(plan, tmp_path / "run")
        assert execute(plan, tmp_path / "run", resume=True).ok

    def test_another_plans_run_directory_is_refused(self, project, tmp_path):
        execute(compile_project(project), tmp_path / "run")
        other = compile_project(project, "limits.timeout_s=5")
        with pytest.raises(RunDirError, match="holds the run of another plan"):
            execute(other, tmp_path / "run", resume=True)

    def test_a_directory_of_other_files_is_refused(self, project, tmp_path):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "notes.txt").write_text("mine")
        with pytest.raises(RunDirError, match="is not empty and holds no tkplan run"):
            execute(compile_project(project), tmp_path / "run")

    def test_an_empty_directory_is_used(self, project, tmp_path):
        (tmp_path / "run").mkdir()
        assert execute(compile_project(project), tmp_path / "run").ok


def test_a_run_directory_that_cannot_be_created_is_refused_with_the_reason(project, tmp_path):
    plan_path = save_plan(compile_project(project), tmp_path / "plan.json")
    (tmp_path / "a_file").write_text("not a directory")

    result = run_cli("run", plan_path, "--out", tmp_path / "a_file" / "run")

    assert result.returncode == 5
    assert result.stderr == (f"error: cannot create the run directory {tmp_path / 'a_file' / 'run'}: "
                             "Not a directory\n")


def test_env_and_exec_refuse_an_edited_plan_too(project, tmp_path):
    plan_path = save_plan(compile_project(project), tmp_path / "plan.json")
    text = plan_path.read_text()
    edited = text.replace('"timeout_s": 30', '"timeout_s": 31')
    assert edited != text
    plan_path.write_text(edited)

    for command in (("env", plan_path, "works.y.s42"), ("exec", plan_path, "works.y.s42", "--", "true")):
        result = run_cli(*command)
        assert result.returncode == 5
        assert "plan_hash does not match its content" in result.stderr


def test_a_step_that_can_never_start_is_refused_before_anything_runs(project, tmp_path):
    plan = compile_project(project)
    step = attrs.evolve(plan.steps[0], resources=attrs.evolve(plan.steps[0].resources, threads=64))
    broken = attrs.evolve(plan, steps=(step,))
    with pytest.raises(PlanError, match="can never start"):
        execute(broken, tmp_path / "run")


def test_a_clusters_plan_is_refused_by_the_local_engine(project, tmp_path):
    """A plan packed onto a cluster's nodes cannot run on this machine alone: exit 5, nothing written."""
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text((REPO / "tests" / "specs" / "cluster_3node.yaml").read_text())
    compiled = run_cli("compile", "--hardware", cluster, "-o", tmp_path / "plan.json", cwd=project)
    assert compiled.returncode == 0, compiled.stderr
    result = run_cli("run", tmp_path / "plan.json", "--out", tmp_path / "run")
    assert result.returncode == 5
    assert "the plan is for a cluster of 3 nodes and the local engine runs on this machine only" in result.stderr
    assert "--engine ray --address ADDR" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_cluster_address_without_the_ray_engine_is_a_bad_invocation(project, tmp_path):
    plan_path = save_plan(compile_project(project), tmp_path / "plan.json")
    result = run_cli("run", plan_path, "--out", tmp_path / "run", "--address", "head:6379")
    assert result.returncode == 2
    assert "a cluster address is for --engine ray, not local" in result.stderr
