"""``--resume`` after the executor itself was killed with SIGKILL: nothing lost, nothing run twice."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time

import pytest

from tkplan.runtime import read_journal
from tkplan.runtime._watchdog import group_members

from .projects import TKPLAN, compile_project, family, save_plan, write_project


@pytest.fixture()
def counting_plan(tmp_path):
    """Six steps that each sleep 0.5 s and then, as their last act, append their id to run_dir/counts.txt."""
    project = write_project(tmp_path / "project", {"count": family("count", sleep_s=0.5)}, seeds=(1, 2, 3, 4, 5, 6))
    plan = compile_project(project)
    return plan, save_plan(plan, tmp_path / "plan.json"), tmp_path / "run"


def start_executor(plan_path, run_dir, *args):
    return subprocess.Popen([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "-q", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for(predicate, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def journal(run_dir):
    return read_journal(run_dir / "journal.jsonl")


def finished(run_dir):
    return [r for r in journal(run_dir) if r["event"] == "step_finished"]


def unfinished(run_dir):
    records = journal(run_dir)
    done = {r["step"] for r in records if r["event"] == "step_finished"}
    return {r["step"]: r for r in records if r["event"] == "step_started" and r["step"] not in done}


def assert_ran_exactly_once(plan, run_dir, interrupted):
    records = journal(run_dir)
    ends = collections.Counter(r["step"] for r in records if r["event"] == "step_finished")
    assert ends == collections.Counter(plan.schedule.order)
    assert {r["status"] for r in records if r["event"] == "step_finished"} == {"ok"}
    assert [r["event"] for r in records].count("run_started") == 2
    assert records[-1]["event"] == "run_finished"
    lines = collections.Counter((run_dir / "counts.txt").read_text().split())
    assert set(lines) == set(plan.schedule.order)
    twice = {step for step, n in lines.items() if n > 1}
    assert twice <= set(interrupted), f"ran twice without having been interrupted: {twice}"
    for record in interrupted.values():
        assert group_members(record["pgid"], record["create_time"]) == []


def test_sigkill_mid_run_then_resume_runs_the_rest_exactly_once(counting_plan):
    plan, plan_path, run_dir = counting_plan
    executor = start_executor(plan_path, run_dir)
    wait_for(lambda: len(finished(run_dir)) >= 2)
    executor.kill()
    executor.wait()
    interrupted = unfinished(run_dir)
    done_before = {r["step"] for r in finished(run_dir)}
    records_before = len(journal(run_dir))

    resumed = subprocess.run([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "--resume", "--format", "json"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert_ran_exactly_once(plan, run_dir, interrupted)
    started_after = [r["step"] for r in journal(run_dir)[records_before:] if r["event"] == "step_started"]
    assert not set(started_after) & done_before, "a finished step was started again"


def test_steps_that_finished_while_no_executor_watched_are_adopted_not_rerun(counting_plan):
    plan, plan_path, run_dir = counting_plan
    executor = start_executor(plan_path, run_dir)
    wait_for(lambda: len(unfinished(run_dir)) >= 2)
    executor.kill()
    executor.wait()
    orphans = unfinished(run_dir)
    wait_for(lambda: all((run_dir / "steps" / step / "outcome.json").exists() for step in orphans))

    resumed = subprocess.run([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "--resume"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert_ran_exactly_once(plan, run_dir, {})
    adopted = {r["step"] for r in finished(run_dir) if r["adopted"]}
    assert adopted == set(orphans)
    assert "finished while no executor watched" in resumed.stderr
    started = collections.Counter(r["step"] for r in journal(run_dir) if r["event"] == "step_started")
    assert all(started[step] == 1 for step in plan.schedule.order)


def test_a_torn_last_journal_line_is_cut_off_on_resume(counting_plan):
    plan, plan_path, run_dir = counting_plan
    first = subprocess.run([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "-q"],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    with open(run_dir / "journal.jsonl", "a") as fh:
        fh.write('{"event":"step_fin')  # what a kill -9 in the middle of a write leaves
    assert len(journal(run_dir)) == 2 + 2 * len(plan.steps)
    again = subprocess.run([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "--resume"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    records = journal(run_dir)
    assert [r["event"] for r in records[-2:]] == ["run_started", "run_finished"]
    assert (run_dir / "journal.jsonl").read_text().endswith("}\n")
    assert collections.Counter((run_dir / "counts.txt").read_text().split()) == collections.Counter(plan.schedule.order)


def test_a_child_started_just_before_the_executor_died_is_found_without_a_journal_record(tmp_path):
    """The executor can die between starting a child and journaling it: --resume still finds and stops it."""
    import json

    from tkplan.runtime import execute
    from tkplan.runtime._jobspec import job_spec
    from tkplan.runtime._rundir import RunDir

    project = write_project(tmp_path / "project", {"count": family("count", sleep_s=1.0)})
    plan = compile_project(project)
    step = plan.steps[0]
    with RunDir.open(tmp_path / "run", plan, resume=False) as rundir:  # what the dead executor had done
        rundir.journal.append("run_started", plan_hash=plan.plan_hash, token="dead-run")
        step_dir = rundir.fresh_step_dir(step.id)
        (step_dir / "step.json").write_text(json.dumps(job_spec(plan, step, rundir.path, step_dir)))
        marker = {"TKPLAN_RUN_TOKEN": "dead-run", "TKPLAN_STEP_ID": step.id}
        orphan = subprocess.Popen([sys.executable, "-m", "tkplan.runtime._child", str(rundir.path), step.id],
                                  env={**os.environ, **step.env, **marker}, start_new_session=True)

    summary = execute(plan, tmp_path / "run", resume=True)
    assert orphan.wait(timeout=10) < 0  # killed by the resume, not left to finish
    assert [r.status for r in summary.results] == ["ok"]
    assert (tmp_path / "run" / "counts.txt").read_text() == f"{step.id}\n"
    assert (tmp_path / "run" / "attempts" / step.id / "1" / "step.json").exists()
