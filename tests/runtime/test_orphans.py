"""``--resume`` signals only the dead run's own processes: never a stranger that happens to hold a journaled id."""

from __future__ import annotations

import subprocess
import sys

from tkplan.runtime._ours import start_ticks
from tkplan.runtime._rundir import RunDir

from .projects import TKPLAN, compile_project, family, save_plan, write_project
from .test_unwatched import gone


def test_a_stranger_whose_group_matches_a_journaled_one_survives_resume(tmp_path):
    """After a reboot or pid reuse, the journaled pid and pgid can name anyone's process: it must live on."""
    project = write_project(tmp_path / "project", {"works": family("ok")})
    plan = compile_project(project)
    plan_path = save_plan(plan, tmp_path / "plan.json")
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=True)
    try:
        with RunDir.open(tmp_path / "run", plan, resume=False) as rundir:  # a run whose executor died long ago
            rundir.journal.append("run_started", plan_hash=plan.plan_hash, token="dead-run")
            rundir.journal.append("step_started", step=plan.steps[0].id, attempt=1, token="dead-run",
                                  pid=stranger.pid, pgid=stranger.pid, start_ticks=start_ticks(stranger.pid),
                                  create_time=0.0, isolation="process")

        resumed = subprocess.run([*TKPLAN, "run", str(plan_path), "--out", str(tmp_path / "run"), "--resume"],
                                 capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert not gone(stranger.pid)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
