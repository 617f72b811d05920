"""``tkplan exec``: run any command as a step of a plan, under the step's environment and limits.

The command gets the step's environment plus ``TKPLAN_STEP_ID``, ``TKPLAN_PLAN_HASH`` and ``TKPLAN_STEP_FILE``
(a JSON file: the step as the plan has it — id, family, targets, task, seed, params, resources, limits, env,
data, digest — with ``plan_hash`` and the plan's ``config``), so a trainer of one's own reads its
hyperparameters from the plan. It runs in its own process group, watched like a step of ``tkplan run``: the
group is killed at the step's timeout (SIGTERM, then SIGKILL after the grace) or as soon as its RSS passes
the step's memory cap, and the end is classified the same way (`classify`). The step file lives in a
temporary directory removed when the command ends.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from tkplan.planner._convert import converter, thaw
from tkplan.planner._plan import Plan
from tkplan.runtime._classify import classify
from tkplan.runtime._settings import ExecutorSettings
from tkplan.runtime._stepenv import step_environment
from tkplan.runtime._watchdog import GroupWatch, kill_group

__all__ = ["ExecEnd", "exec_step"]


@attrs.frozen
class ExecEnd:
    """How a command run by `exec_step` ended.

    Attributes:
        status: ``ok``, ``failed`` (a non-zero exit), ``timeout``, ``oom`` or ``crashed`` (a signal).
        detail: what happened, in words (empty for ``ok``).
        returncode: the command's exit status (negative: the signal that ended it).
        wall_s: how long it ran.
        peak_rss_mb: the highest RSS of its process group seen.
    """

    status: str
    detail: str
    returncode: int
    wall_s: float
    peak_rss_mb: float


def exec_step(plan: Plan, step_id: str, command: Sequence[str], base_env: Mapping[str, str],
              settings: ExecutorSettings = ExecutorSettings()) -> ExecEnd:
    """Run ``command`` as step ``step_id`` of ``plan`` and wait for it, enforcing the step's limits.

    Raises:
        KeyError: no such step (the message lists the plan's steps).
        FileNotFoundError, PermissionError: the command cannot be started.
        KeyboardInterrupt: interrupted; the command's process group is killed first.

    .. versionadded:: 0.1
    """
    step = plan.step(step_id)
    with tempfile.TemporaryDirectory(prefix="tkplan-exec-") as tmp:
        step_file = Path(tmp) / "step.json"
        step_file.write_text(json.dumps({**converter.unstructure(step), "plan_hash": plan.plan_hash,
                                         "config": thaw(plan.config)}, indent=1, sort_keys=True) + "\n")
        env = {**step_environment(plan, step_id, base_env), "TKPLAN_STEP_ID": step.id,
               "TKPLAN_PLAN_HASH": plan.plan_hash, "TKPLAN_STEP_FILE": str(step_file)}
        started = time.monotonic()
        proc = subprocess.Popen(list(command), env=env, start_new_session=True)
        watch = GroupWatch(proc.pid)
        try:
            killed_for, detail = _watch(proc.pid, watch, step.limits.timeout_s, step.limits.memory_cap_mb, settings)
        finally:
            kill_group(proc.pid)  # what the command left in its group; the unreaped leader keeps the id ours
            returncode = proc.wait()
    outcome = {"status": "ok"} if returncode == 0 else (
        {"status": "failed", "error": {"summary": f"exit code {returncode}"}} if returncode > 0 else None)
    status, detail = classify(killed_for=killed_for, kill_detail=detail, returncode=returncode, outcome=outcome)
    return ExecEnd(status, detail, returncode, round(time.monotonic() - started, 3), round(watch.peak_rss_mb, 1))


def _watch(pid: int, watch: GroupWatch, timeout_s: float, cap_mb: int | None,
           settings: ExecutorSettings) -> tuple[str | None, str]:
    """Wait until the command ends, without reaping it; kill its group at the timeout or over the memory cap.

    Returns:
        ``(killed_for, detail)``: ``("timeout" | "oom", why)``, or ``(None, "")`` when it ended by itself.
    """
    started = time.monotonic()
    killed: tuple[str | None, str] = (None, "")
    kill_at = None
    while not _exited(pid, settings.poll_interval_s):
        now = time.monotonic()
        if killed[0] is not None:
            if kill_at is not None and now >= kill_at:
                kill_group(pid, signal.SIGKILL)
                kill_at = None
            continue
        rss = watch.sample()
        if cap_mb is not None and rss > cap_mb:
            kill_group(pid, signal.SIGKILL)
            killed = ("oom", (f"RSS of its process group reached {rss:.1f} MB, over its {cap_mb} MB cap; "
                              "process group killed"))
        elif now - started > timeout_s:
            kill_group(pid, signal.SIGTERM)
            kill_at = now + settings.term_grace_s
            killed = ("timeout", f"ran past its {timeout_s:g} s timeout; process group killed")
    return killed


def _exited(pid: int, wait_s: float) -> bool:
    """Whether our child ``pid`` has ended, waiting up to ``wait_s`` (woken by its exit where Linux gives a pidfd);
    it stays unreaped, so its process group id stays ours."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        if fd is not None:
            select.select([fd], [], [], wait_s)
        elif not _ended(pid):
            time.sleep(wait_s)
        return _ended(pid)
    finally:
        if fd is not None:
            os.close(fd)


def _ended(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
