"""Signals and a dead executor: every step still stops within its limits, and the journal says what happened."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tkplan.runtime._ours import marked

from .projects import compile_project, family, save_plan, write_project
from .test_resume import journal, start_executor, wait_for

ENTRY = [sys.executable, "-c", "from tkplan._entry import run; run()"]
"""The ``tkplan`` console script (``tkplan = "tkplan._entry:run"``)."""


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie waiting for a parent that is not ours counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(b")") + 2:][:1] in (b"Z", b"X")


def run_token(run_dir):
    return next(r["token"] for r in journal(run_dir) if r["event"] == "run_started")


def pid_of(run_dir, step_id, name="child.pid"):
    path = run_dir / "steps" / step_id / name
    wait_for(lambda: path.exists() and path.read_text() != "")
    return int(path.read_text())


@pytest.fixture()
def sleeper(tmp_path):
    """A plan of two steps that sleep for good, with a 3 s timeout and no memory cap."""
    project = write_project(tmp_path / "project", {"sleeps": family("sleep_and_tell")}, timeout_s=3, seeds=(1, 2))
    plan = compile_project(project)
    return plan, save_plan(plan, tmp_path / "plan.json"), tmp_path / "run"


class TestExecutorKilled:
    def test_a_step_still_times_out_and_resume_takes_that_end(self, sleeper):
        plan, plan_path, run_dir = sleeper
        executor = start_executor(plan_path, run_dir)
        pids = [pid_of(run_dir, step.id) for step in plan.steps]
        executor.kill()
        executor.wait()
        wait_for(lambda: all(gone(pid) for pid in pids))  # past the 3 s timeout, with nobody watching
        for step in plan.steps:
            outcome = json.loads((run_dir / "steps" / step.id / "outcome.json").read_text())
            assert outcome["status"] == "timeout"
            assert "stopped by its own watchdog" in outcome["detail"]
        resumed = subprocess.run([*ENTRY, "run", str(plan_path), "--out", str(run_dir), "--resume", "--format", "json"],
                                 capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 1, resumed.stderr
        results = json.loads(resumed.stdout)["results"]
        assert [(r["status"], r["adopted"]) for r in results] == [("timeout", True)] * 2

    def test_a_step_still_keeps_its_memory_cap(self, tmp_path):
        project = write_project(tmp_path / "project", {"grows": family("allocate_when_unwatched", allocate_mb=400)},
                                timeout_s=120, memory_cap_gb=0.2)
        plan = compile_project(project)
        run_dir = tmp_path / "run"
        executor = start_executor(save_plan(plan, tmp_path / "plan.json"), run_dir)
        pid = pid_of(run_dir, plan.steps[0].id)
        executor.kill()
        executor.wait()
        wait_for(lambda: gone(pid))
        outcome = json.loads((run_dir / "steps" / plan.steps[0].id / "outcome.json").read_text())
        assert outcome["status"] == "oom"
        assert "over its 204 MB cap" in outcome["detail"] or "MB cap" in outcome["detail"]


class TestSignals:
    @pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT])
    def test_a_stopping_signal_stops_every_step_and_is_journaled(self, sleeper, sig):
        plan, plan_path, run_dir = sleeper
        executor = subprocess.Popen([*ENTRY, "run", str(plan_path), "--out", str(run_dir), "-q"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        pids = [pid_of(run_dir, step.id) for step in plan.steps]
        token = run_token(run_dir)
        executor.send_signal(sig)
        _, err = executor.communicate(timeout=60)
        assert executor.returncode == 128 + sig
        assert "Traceback" not in err and "Aborted!" not in err
        assert f"finish the run with --resume --out {run_dir}" in err
        assert journal(run_dir)[-1]["event"] == "run_interrupted"
        assert all(gone(pid) for pid in pids)
        assert marked([token]) == []

    def test_a_burst_of_ctrl_cs_still_ends_with_every_step_stopped_and_journaled(self, sleeper):
        plan, plan_path, run_dir = sleeper
        executor = subprocess.Popen([*ENTRY, "run", str(plan_path), "--out", str(run_dir), "-q"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        pids = [pid_of(run_dir, step.id) for step in plan.steps]
        token = run_token(run_dir)
        for _ in range(3):
            executor.send_signal(signal.SIGINT)
        _, err = executor.communicate(timeout=60)
        assert executor.returncode == 130
        assert "Traceback" not in err and "Aborted!" not in err
        assert journal(run_dir)[-1]["event"] == "run_interrupted"
        assert all(gone(pid) for pid in pids)
        assert marked([token]) == []

    @pytest.mark.parametrize("delay_s", [0.0, 0.3, 0.6])
    def test_ctrl_c_at_any_moment_of_the_start_exits_130_without_a_traceback(self, sleeper, delay_s):
        """A Ctrl-C while tkplan still imports is handled as soon as its handlers are set (the signal is held
        blocked until then here, as it would be with the interpreter's own start-up out of the picture)."""
        _, plan_path, run_dir = sleeper
        executor = subprocess.Popen([*ENTRY, "run", str(plan_path), "--out", str(run_dir), "-q"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                    preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT]))
        time.sleep(delay_s)
        executor.send_signal(signal.SIGINT)
        _, err = executor.communicate(timeout=60)
        assert executor.returncode == 130, err
        assert "Traceback" not in err and "Aborted!" not in err and "interrupted" in err


def test_a_descendant_that_left_the_step_process_group_is_stopped_when_the_step_ends(tmp_path):
    project = write_project(tmp_path / "project", {"escapes": family("escape_and_return"),
                                                   "escapes_inproc": family("escape_and_return", isolation="inproc")})
    plan = compile_project(project)
    run_dir = tmp_path / "run"
    result = subprocess.run([*ENTRY, "run", str(save_plan(plan, tmp_path / "plan.json")), "--out", str(run_dir), "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for step in plan.steps:
        assert gone(int((run_dir / "steps" / step.id / "escaped.pid").read_text()))
