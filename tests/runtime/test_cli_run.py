"""``tkplan run``, ``tkplan env``, ``tkplan exec`` as a user calls them."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from tkplan import cli
from tkplan._cli_run import register

from .projects import TKPLAN, compile_project, family, save_plan, write_project


@pytest.fixture()
def invoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def plan_path(tmp_path):
    project = write_project(tmp_path / "project", {"works": family("ok"), "raises": family("raise_error")})
    return save_plan(compile_project(project), tmp_path / "plan.json")


def test_register_adds_the_commands_to_a_group():
    group = click.Group("g")
    register(group)
    assert sorted(group.commands) == ["demo", "env", "exec", "report", "run"]
    assert {"run", "demo", "report", "env", "exec"} <= set(cli.main.list_commands(click.Context(cli.main)))


def test_run_prints_progress_and_a_summary_table_and_exits_1_on_a_failure(invoke, plan_path, tmp_path):
    result = invoke("run", plan_path)
    assert result.exit_code == 1
    plan = json.loads(plan_path.read_text())
    run_dir = tmp_path / "runs" / f"test-{plan['plan_hash'][:12]}"
    assert (run_dir / "journal.jsonl").exists()
    header, rule, *rows = result.stdout.splitlines()[:4]
    assert header.startswith("step") and rule.startswith("----")
    assert "peak RSS MB / cap" in header and "threads used / planned" in header and "OS threads" in header
    assert any(r.startswith("raises.y.s42") and " failed " in r for r in rows)
    assert "failed  raises.y.s42: ValueError: bad input in raises.y.s42 (traceback:" in result.stdout
    assert "2 steps: 1 ok, 1 failed;" in result.stdout
    assert "ok      works.y.s42" in result.stderr and "[2/2]" in result.stderr


def test_an_unknown_engine_is_a_bad_invocation_that_lists_the_engines(invoke, plan_path, tmp_path):
    result = invoke("run", plan_path, "--engine", "dask")
    assert result.exit_code == 2
    assert "Invalid value for '--engine': no engine 'dask'; known: local, ray" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_run_format_json_is_the_summary_for_scripts(invoke, plan_path, tmp_path):
    result = invoke("run", plan_path, "--out", tmp_path / "out", "--format", "json", "--quiet")
    summary = json.loads(result.stdout)
    assert result.exit_code == 1 and result.stderr == ""
    assert summary["counts"]["ok"] == 1 and summary["counts"]["failed"] == 1
    assert {r["step_id"]: r["status"] for r in summary["results"]} == {"works.y.s42": "ok", "raises.y.s42": "failed"}
    assert summary["run_dir"] == str(tmp_path / "out")


def test_run_exits_0_when_every_step_is_ok(invoke, tmp_path):
    plan_path = save_plan(compile_project(write_project(tmp_path / "p", {"works": family("ok")})), tmp_path / "ok.json")
    assert invoke("run", plan_path, "--out", tmp_path / "out", "-q").exit_code == 0


def test_env_prints_the_steps_environment_as_shell_exports(invoke, plan_path):
    result = invoke("env", plan_path, "works.y.s42")
    assert result.exit_code == 0
    exported = dict(shlex.split(line)[1].split("=", 1) for line in result.stdout.splitlines())
    plan = json.loads(plan_path.read_text())
    assert exported == next(s["env"] for s in plan["steps"] if s["id"] == "works.y.s42")
    assert "export OMP_NUM_THREADS=1" in result.stdout.splitlines()


def test_env_of_an_unknown_step_lists_the_steps(invoke, plan_path):
    result = invoke("env", plan_path, "nope")
    assert result.exit_code == 2
    assert "no step 'nope' in the plan; steps:" in result.stderr and "works.y.s42" in result.stderr


def test_exec_runs_a_command_under_the_steps_environment(plan_path):
    code = "import os, sys; print(os.environ['OMP_NUM_THREADS'], os.environ['TKPLAN_SEED']); sys.exit(7)"
    result = subprocess.run([*TKPLAN, "exec", str(plan_path), "works.y.s42", "--", sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=60)
    plan = json.loads(plan_path.read_text())
    seed = next(s["seed"] for s in plan["steps"] if s["id"] == "works.y.s42")
    assert (result.returncode, result.stdout) == (7, f"1 {seed}\n")


def test_exec_of_a_missing_command_exits_127(plan_path):
    result = subprocess.run([*TKPLAN, "exec", str(plan_path), "works.y.s42", "--", "no-such-command-xyz"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 127 and "command not found: no-such-command-xyz" in result.stderr


@pytest.mark.skipif(shutil.which("tkplan") is None, reason="the tkplan console script is not on PATH")
def test_the_console_script_on_path_runs_a_plan(plan_path, tmp_path):
    result = subprocess.run(["tkplan", "run", str(plan_path), "--out", str(tmp_path / "out"), "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert json.loads(result.stdout)["counts"]["failed"] == 1
