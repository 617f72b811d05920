"""``die_with_parent``: a step's child dies with the process that started it (how a Ray task holds its step)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tkplan.runtime._jobspec import job_spec

from .projects import compile_project, family, write_project
from .test_local import gone

STARTER = """
import json, sys, time
from pathlib import Path
from tkplan.planner import plan_from_json
from tkplan.runtime import ExecutorSettings, Job
from tkplan.runtime._local import LocalEngine

plan = plan_from_json(Path(sys.argv[1]).read_text())
step, run_dir = plan.steps[0], Path(sys.argv[2])
engine = LocalEngine(run_dir, ExecutorSettings(), {"die_with_parent": sys.argv[3] == "yes"})
facts = engine.start(Job(step, run_dir, run_dir / "steps" / step.id, timeout_s=600))
print(facts["pid"], flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("die", ["yes", "no"])
def test_a_child_dies_with_its_starter_only_when_asked(tmp_path, die):
    from tkplan.planner import plan_to_json

    plan = compile_project(write_project(tmp_path / "project", {"sleeps": family("sleep_forever")}))
    step, run_dir = plan.steps[0], tmp_path / "run"
    step_dir = run_dir / "steps" / step.id
    step_dir.mkdir(parents=True)
    (step_dir / "step.json").write_text(json.dumps(job_spec(plan, step, run_dir, step_dir)))
    (tmp_path / "plan.json").write_text(plan_to_json(plan))
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path / "plan.json"), str(run_dir), die],
                               stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    child = int(starter.stdout.readline())
    starter.kill()  # SIGKILL: no clean-up of its own runs
    starter.wait()
    deadline = time.monotonic() + (10 if die == "yes" else 1)  # gone at once, or still there a second later
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert gone(child) == (die == "yes")
    finally:
        if not gone(child):  # the orphan this test made
            os.killpg(child, signal.SIGKILL)
