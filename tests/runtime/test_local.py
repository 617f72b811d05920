"""The local engine holds a step's whole process group: what a child starts is watched and killed with it."""

from __future__ import annotations

import json
import time
from typing import Any

import psutil

from tkplan.runtime import ExecutorSettings, Job, execute
from tkplan.runtime._jobspec import job_spec
from tkplan.runtime._local import LocalEngine

from .projects import compile_project, family, write_project


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_timeout_kills_the_grandchildren_too(tmp_path):
    project = write_project(tmp_path, {"spawner": family("spawn_and_sleep", grandchild_mb=1)}, timeout_s=2)
    (result,) = execute(compile_project(project), tmp_path / "run").results
    assert result.status == "timeout"
    grandchild = int((tmp_path / "run" / "steps" / result.step_id / "grandchild.pid").read_text())
    assert gone(grandchild)


def test_the_memory_cap_counts_the_whole_group(tmp_path):
    """The child stays small; its grandchild's 400 MB put the group over a 150 MB cap."""
    project = write_project(tmp_path, {"spawner": family("spawn_and_sleep", grandchild_mb=400)}, timeout_s=20,
                            memory_cap_gb=0.15)
    (result,) = execute(compile_project(project), tmp_path / "run").results
    assert result.status == "oom", result.detail
    assert gone(int((tmp_path / "run" / "steps" / result.step_id / "grandchild.pid").read_text()))


def test_cancel_stops_a_running_step(tmp_path):
    project = write_project(tmp_path, {"sleeps": family("sleep_forever")})
    plan = compile_project(project)
    step = plan.steps[0]
    step_dir = tmp_path / "run" / "steps" / step.id
    step_dir.mkdir(parents=True)
    (step_dir / "step.json").write_text(json.dumps(job_spec(plan, step, tmp_path / "run", step_dir)))
    engine = LocalEngine(tmp_path / "run", ExecutorSettings(term_grace_s=0.5))
    facts = engine.start(Job(step, tmp_path / "run", step_dir, timeout_s=60))
    engine.cancel(step.id)
    ends: list[Any] = []
    deadline = time.monotonic() + 30
    while not ends and time.monotonic() < deadline:
        ends = engine.poll(0.1)
    engine.close()
    assert [(e.step_id, e.status, e.detail) for e in ends] == [
        (step.id, "cancelled", "cancelled; process group killed")]
    assert gone(facts["pid"])
