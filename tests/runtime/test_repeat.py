"""Running a plan again: a finished run is shown, not redone; ``--fresh`` starts over; ``--resume`` redoes failures."""

from __future__ import annotations

import subprocess

from tkplan.runtime import read_journal

from .projects import TKPLAN, compile_project, family, save_plan, write_project


def tkplan(*args, cwd):
    return subprocess.run([*TKPLAN, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def started(run_dir):
    return [r["step"] for r in read_journal(run_dir / "journal.jsonl") if r["event"] == "step_started"]


def test_a_finished_run_prints_its_summary_and_exits_0_without_running_again(tmp_path):
    project = write_project(tmp_path / "project", {"works": family("ok")})
    plan = compile_project(project)
    save_plan(plan, project / "plan.json")
    first = tkplan("run", "plan.json", cwd=project)
    assert first.returncode == 0, first.stderr
    again = tkplan("run", "plan.json", cwd=project)
    assert again.returncode == 0, again.stderr
    run_dir = project / "runs" / f"test-{plan.plan_hash[:12]}"
    assert f"run {run_dir}: this plan's run finished already (1 steps); nothing runs again" in again.stderr
    assert "works.y.s42  ok" in again.stdout
    assert started(run_dir) == ["works.y.s42"]


def test_fresh_starts_a_new_run_directory(tmp_path):
    project = write_project(tmp_path / "project", {"works": family("ok")})
    plan = compile_project(project)
    save_plan(plan, project / "plan.json")
    assert tkplan("run", "plan.json", cwd=project).returncode == 0
    fresh = tkplan("run", "plan.json", "--fresh", cwd=project)
    assert fresh.returncode == 0, fresh.stderr
    first, second = (project / "runs" / f"test-{plan.plan_hash[:12]}{suffix}" for suffix in ("", "-2"))
    assert started(first) == started(second) == ["works.y.s42"]
    assert f"run directory {second}" in fresh.stdout


def test_resume_after_a_failure_runs_again_what_did_not_end_ok(tmp_path):
    project = write_project(tmp_path / "project", {"works": family("ok"), "flaky": family("fail_first")},
                            after={"later": family("ok")})
    plan = compile_project(project)
    save_plan(plan, project / "plan.json")
    first = tkplan("run", "plan.json", cwd=project)
    assert first.returncode == 1
    run_dir = project / "runs" / f"test-{plan.plan_hash[:12]}"
    assert "failed  flaky.y.s42: RuntimeError: first attempt of flaky.y.s42 fails" in first.stdout
    assert "skipped later.y.s42: dependency flaky.y.s42 ended failed" in first.stdout
    shown = tkplan("run", "plan.json", cwd=project)
    assert shown.returncode == 1 and "finished already" in shown.stderr
    resumed = tkplan("run", "plan.json", "--resume", cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "3 steps: 3 ok" in resumed.stdout
    assert sorted(started(run_dir)) == ["flaky.y.s42", "flaky.y.s42", "later.y.s42", "works.y.s42"]
    assert (run_dir / "attempts" / "flaky.y.s42" / "1" / "result.json").is_file()
