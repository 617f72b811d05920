"""Every way a step can end, with real child processes: each is classified, the others finish, the journal holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tkplan.runtime import STATUSES, execute, read_journal

from .projects import compile_project, family, write_project

FAULTS = {
    "works": family("ok"),
    "raises": family("raise_error"),
    "sleeps": family("sleep_forever"),
    "hogs": family("allocate", allocate_mb=600),
    "segfaults": family("segfault"),
    "exits": family("exit3"),
    "inproc_works": family("ok", isolation="inproc"),
}


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One run of a plan holding every fault, plus a step that depends on all of them."""
    project = write_project(tmp_path_factory.mktemp("faults"), FAULTS, timeout_s=4, memory_cap_gb=0.15,
                            after={"downstream": family("ok")})
    plan = compile_project(project)
    events: list[Any] = []
    summary = execute(plan, project / "run", on_event=events.append)
    return plan, summary, events, project / "run"


def result(summary, family_name):
    return next(r for r in summary.results if r.step_id.startswith(family_name + "."))


class TestClassification:
    def test_a_trainer_that_returns_is_ok_with_its_metrics_and_files(self, faulty_run):
        plan, summary, _, run_dir = faulty_run
        works = result(summary, "works")
        assert (works.status, works.detail) == ("ok", "")
        assert works.metrics == {"score": 1.0, "seed": plan.step(works.step_id).seed}
        assert works.output == {"model": "model.txt"}
        assert (run_dir / "steps" / works.step_id / "model.txt").read_text() == f"model of {works.step_id}\n"
        assert json.loads((run_dir / "steps" / works.step_id / "metrics.json").read_text()) == works.metrics

    def test_an_exception_is_failed_with_its_traceback_kept(self, faulty_run):
        _, summary, _, _ = faulty_run
        raises = result(summary, "raises")
        assert raises.status == "failed"
        assert raises.detail == f"ValueError: bad input in {raises.step_id}"
        assert "Traceback (most recent call last)" in raises.error
        assert "in raise_error" in raises.error

    def test_a_sleep_past_the_timeout_is_timeout(self, faulty_run):
        _, summary, _, _ = faulty_run
        sleeps = result(summary, "sleeps")
        assert (sleeps.status, sleeps.detail) == ("timeout", "ran past its 4 s timeout; process group killed")
        assert sleeps.wall_s >= 4

    def test_an_allocation_past_the_memory_cap_is_oom(self, faulty_run):
        _, summary, _, _ = faulty_run
        hogs = result(summary, "hogs")
        assert hogs.status == "oom"
        assert hogs.detail.startswith("RSS of its process group reached")
        assert hogs.detail.endswith("over its 153 MB cap; process group killed")
        assert hogs.peak_rss_mb > 153

    def test_a_segfault_is_crashed_with_the_signal_named(self, faulty_run):
        _, summary, _, _ = faulty_run
        assert (result(summary, "segfaults").status, result(summary, "segfaults").detail) == (
            "crashed", "killed by SIGSEGV")

    def test_os_exit_is_crashed_with_the_exit_code(self, faulty_run):
        _, summary, _, _ = faulty_run
        assert (result(summary, "exits").status, result(summary, "exits").detail) == (
            "crashed", "exit code 3 without a result")

    def test_a_step_whose_dependency_failed_is_skipped(self, faulty_run):
        _, summary, _, _ = faulty_run
        downstream = result(summary, "downstream")
        assert downstream.status == "skipped"
        assert downstream.detail.startswith("dependency ") and downstream.wall_s is None

    def test_an_in_process_step_runs_in_the_worker(self, faulty_run):
        _, summary, _, _ = faulty_run
        assert result(summary, "inproc_works").status == "ok"


class TestTheRunGoesOn:
    def test_every_step_has_a_result_in_plan_order(self, faulty_run):
        plan, summary, _, _ = faulty_run
        assert [r.step_id for r in summary.results] == list(plan.schedule.order)
        assert dict(summary.counts) == {"ok": 2, "failed": 1, "timeout": 1, "oom": 1, "crashed": 2, "skipped": 1,
                                        "pruned": 0}
        assert not summary.ok

    def test_the_journal_is_valid_and_records_each_end_once(self, faulty_run):
        plan, summary, _, run_dir = faulty_run
        records = read_journal(run_dir / "journal.jsonl")
        assert (records[0]["event"], records[-1]["event"]) == ("run_started", "run_finished")
        finished = [r for r in records if r["event"] == "step_finished"]
        assert sorted(r["step"] for r in finished) == sorted(plan.schedule.order)
        assert {r["step"]: r["status"] for r in finished} == {r.step_id: r.status for r in summary.results}
        started = {r["step"] for r in records if r["event"] == "step_started"}
        assert started == {r.step_id for r in summary.results if r.status != "skipped"}
        assert all(isinstance(r["pgid"], int) for r in records if r["event"] == "step_started")
        assert records[-1]["counts"] == dict(summary.counts)

    def test_each_step_directory_holds_its_result_and_logs(self, faulty_run):
        _, summary, _, run_dir = faulty_run
        for r in summary.results:
            saved = json.loads((run_dir / "steps" / r.step_id / "result.json").read_text())
            assert (saved["step_id"], saved["status"]) == (r.step_id, r.status)
            assert saved["status"] in STATUSES
        assert (run_dir / "steps" / result(summary, "works").step_id / "stderr.log").exists()
        assert json.loads((run_dir / "summary.json").read_text())["counts"] == dict(summary.counts)

    def test_usage_is_recorded_next_to_the_allowance(self, faulty_run):
        plan, summary, _, _ = faulty_run
        works = result(summary, "works")
        step = plan.step(works.step_id)
        assert (works.allowed.threads, works.allowed.timeout_s, works.allowed.memory_cap_mb) == (
            step.resources.threads, step.limits.timeout_s, step.limits.memory_cap_mb)
        assert works.wall_s > 0 and works.cpu_s > 0 and works.peak_rss_mb > 0 and works.threads_seen >= 1
        assert works.applied == {"thread_limits": {"openmp": 1, "blas": 1}}

    def test_events_start_and_finish_every_step(self, faulty_run):
        _, summary, events, _ = faulty_run
        kinds = [type(e).__name__ for e in events]
        assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
        assert kinds.count("StepFinished") == len(summary.results)
        assert kinds.count("StepStarted") == len(summary.results) - 1  # the skipped step never starts
        finished = [e.done for e in events if type(e).__name__ == "StepFinished"]
        assert finished == list(range(1, len(summary.results) + 1))


def test_an_in_process_timeout_kills_the_worker_and_the_next_step_gets_a_new_one(tmp_path):
    """An inproc step past its timeout takes the worker down with it; the next inproc step still runs."""
    project = write_project(tmp_path, {"a_sleeps": family("sleep_forever", isolation="inproc"),
                                       "b_reports": family("report_threads", isolation="inproc")},
                            timeout_s=2, run={"name": "t", "threads": 2, "output_dir": "runs", "max_parallel": 1})
    plan = compile_project(project)
    summary = execute(plan, tmp_path / "run")
    statuses = {r.step_id.split(".")[0]: r.status for r in summary.results}
    assert statuses == {"a_sleeps": "timeout", "b_reports": "ok"}


def test_a_step_killed_half_way_through_a_write_leaves_its_complete_files_and_no_temporary_one(tmp_path):
    """Killed at its timeout inside an atomic write, in its own process or in the warm worker: what it had
    written whole stays, the half-written file is neither there nor left as a temporary."""
    project = write_project(tmp_path, {"own": family("write_half_then_sleep"),
                                       "worker": family("write_half_then_sleep", isolation="inproc")}, timeout_s=3)
    summary = execute(compile_project(project), project / "run")

    assert [r.status for r in summary.results] == ["timeout", "timeout"]
    for r in summary.results:
        step_dir = project / "run" / "steps" / r.step_id
        assert (step_dir / "notes.txt").read_text() == "complete\n"
        assert not (step_dir / "model.bin").exists()
        assert [p.name for p in step_dir.rglob(".*") if p.suffix == ".tmp" or p.name.startswith(".partial-")] == []
