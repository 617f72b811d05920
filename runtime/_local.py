"""The ``local`` engine: every step a child process on this machine, watched and stopped by the executor.

Isolation, as the plan's ``step.isolation.mode`` says:

* ``process`` — a fresh interpreter per step (``python -P -m tkplan.runtime._child RUN_DIR STEP_ID``, the
  name of the job's step directory: the step's id, which a study's job carries prefixed by its trial; started
  with ``subprocess``, never forked from the executor), in its own session and process group, with the
  step's environment in place before its first import; stdout and stderr go to ``steps/<id>/*.log``.
  ``-P``: the working directory goes to the end of the child's ``sys.path``, not the front, so a project
  file named like a dependency (``threadpoolctl.py``) does not shadow it.
* ``inproc`` — "in-process" means inside the executor's own worker: one long-lived interpreter per run
  (``python -m tkplan.runtime._child --worker``) runs the ``inproc`` steps one at a time (told each step's id,
  or the absolute path of a step directory outside the engine's run directory), without a fresh
  interpreter per step, so a step pays no start-up cost. Its limits come through threadpoolctl (applied and
  restored around the step) and its environment through ``os.environ``. The worker is a process group of its
  own, watched like any child: a timeout or a memory cap kills it, that step is classified, and the next
  ``inproc`` step gets a new worker. The worker's RSS includes what earlier steps left allocated.

Every step's process group is sampled every ``poll_interval_s`` (`GroupWatch`): over its memory cap it is
killed (``oom``); past its timeout it gets SIGTERM, then SIGKILL after ``term_grace_s`` (``timeout``). A
child's exit wakes the engine at once (a pidfd on Linux), so a short step is not held up by the polling
period. When a child ends, whatever it left behind in its group is killed, and the step's slot is freed once
those processes are gone (their memory with them).

Every process of a step carries the run's marker in its environment (``tkplan.runtime._ours``): when a step
ends, its descendants that left its process group (``setsid``) are found by the marker and killed too; and
``--resume`` signals only what carries the dead run's marker. Should the executor die, each step's own
watchdog keeps its timeout and memory cap (``tkplan.runtime._guard``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from tkplan._io import remove_partial_writes
from tkplan.errors import PlanError
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._plan import Plan, Step
from tkplan.runtime._classify import classify
from tkplan.runtime._engine import Engine, Job, JobEnd
from tkplan.runtime._ours import RUN_TOKEN, STEP_ID, is_leader, start_ticks, wait_gone
from tkplan.runtime._settings import ExecutorSettings
from tkplan.runtime._watchdog import GroupWatch, kill_group

__all__ = ["LocalEngine"]

_CHILD = "tkplan.runtime._child"
_MIB = 2**20


@attrs.define
class _Running:
    """A started job and what the engine knows of it."""

    job: Job
    pid: int
    pgid: int
    watch: GroupWatch
    started: float
    popen: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    last_sample: float = 0.0
    killed_for: str | None = None
    kill_detail: str = ""
    kill_at: float | None = None  # when SIGKILL follows a SIGTERM


@attrs.define
class _Worker:
    """The in-process worker: its process, its notification pipe, the step it runs."""

    popen: subprocess.Popen[bytes]
    notify: int
    pidfd: int | None
    watch: GroupWatch
    log: IO[bytes]
    buffer: bytes = b""
    current: _Running | None = None


class LocalEngine(Engine):
    """Runs steps as child processes of this executor (see the module docstring).

    Its one option, ``die_with_parent`` (default false), has each step's child killed when the process that
    started it dies (Linux): the Ray engine runs a local engine inside each Ray task, and a task killed by
    Ray must not leave its step running.

    .. versionadded:: 0.1
    """

    def __init__(self, run_dir: Path, settings: ExecutorSettings, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(run_dir, settings, options)
        unknown = sorted(set(self.options) - {"die_with_parent"})
        if unknown:
            raise ValueError(f"the local engine has no option {', '.join(unknown)} (--address is for --engine ray)")
        self._procs: dict[str, _Running] = {}
        self._worker: _Worker | None = None
        self._token = ""

    # -- Engine ----------------------------------------------------------------------------------------

    def prepare(self, plan: Plan, hardware: HardwareSpec | None) -> HardwareSpec:
        """Refuse a cluster's plan (its steps are packed onto nodes this machine is not); else probe this machine."""
        if plan.hardware.nodes:
            raise PlanError(f"the plan is for a cluster of {len(plan.hardware.nodes)} nodes and the local engine "
                            "runs on this machine only: run it with --engine ray --address ADDR, or compile it "
                            "for this machine (without --hardware)")
        return super().prepare(plan, hardware)

    def accepts(self, step: Step) -> bool:
        """One ``inproc`` step at a time (there is one worker); ``process`` steps whenever admitted."""
        if step.isolation.mode == "inproc":
            return self._worker is None or self._worker.current is None
        return True

    def start(self, job: Job) -> Mapping[str, Any]:
        """Start the job's child, or hand it to the worker; return pid, pgid, create_time, start_ticks, isolation."""
        self._token = job.token
        if job.step.isolation.mode == "inproc":
            running = self._start_inproc(job)
        else:
            running = self._start_process(job)
        return {"pid": running.pid, "pgid": running.pgid, "create_time": running.watch.create_time,
                "start_ticks": start_ticks(running.pid), "isolation": job.step.isolation.mode}

    def poll(self, timeout_s: float) -> list[JobEnd]:
        """Wait for an exit, a worker's notice or the next limit check, then report what ended."""
        self._wait(min(timeout_s, self._next_check()))
        ends = []
        for running in list(self._procs.values()):
            if _exited(running.pid):
                ends.append(self._end_process(running))
        ends += self._poll_worker()
        self._enforce_limits()
        return ends

    def cancel(self, step_id: str) -> None:
        """SIGTERM the step's group, SIGKILL after the grace; it ends as ``cancelled``."""
        running = self._procs.get(step_id)
        if running is None and self._worker is not None and self._worker.current is not None \
                and self._worker.current.job.step.id == step_id:
            running = self._worker.current
        if running is not None and running.killed_for is None:
            self._kill(running, "cancelled", "cancelled", self.settings.term_grace_s)

    def release_orphans(self, started: Sequence[Mapping[str, Any]], *, tokens: Sequence[str] = ()) -> None:
        """Kill what a dead executor left running on this run directory, and nothing that is not ours.

        A journaled group is signalled only when its leader is still the very process the step started: the
        same pid, the exact start time journaled (``start_ticks``) and the run's marker in its environment
        (``tkplan.runtime._ours``). Then every process that carries the marker of one of ``tokens`` (the
        earlier runs on this directory) is killed: the members of those groups, descendants that left them,
        and a child started too soon before the executor died to be journaled. No other executor can be
        using the directory: its lock is ours.

        Raises:
            RuntimeError: a process is still alive ``orphan_wait_s`` after SIGKILL.
        """
        for record in started:
            pid, pgid = record.get("pid"), record.get("pgid")
            if (isinstance(pid, int) and pid == pgid and isinstance(record.get("start_ticks"), int)
                    and is_leader(pid, record["start_ticks"], str(record.get("token") or ""))):
                kill_group(pgid)
        tokens = [*tokens, *(str(r["token"]) for r in started if r.get("token"))]
        if not wait_gone(tokens, None, self.settings.orphan_wait_s, self.settings.poll_interval_s / 4):
            raise RuntimeError(f"processes left by the dead run are still alive {self.settings.orphan_wait_s:g} s "
                               "after SIGKILL")

    def close(self) -> None:
        """Kill every running group and the worker, reap them, and remove the files they were half-way through
        writing."""
        killed = self._running()
        for running in list(self._procs.values()):
            kill_group(running.pgid)
            _reap(running.pid)
            if running.popen is not None:
                running.popen.returncode = -signal.SIGKILL
            _close_fd(running.pidfd)
        self._procs.clear()
        if self._worker is not None:
            self._stop_worker(self._worker)
            self._worker = None
        wait_gone([self._token], None, self.settings.term_grace_s, self.settings.poll_interval_s / 10)
        for running in killed:
            remove_partial_writes(running.job.step_dir)

    # -- process steps ---------------------------------------------------------------------------------

    def _start_process(self, job: Job) -> _Running:
        env = {**os.environ, **job.step.env, RUN_TOKEN: job.token, STEP_ID: job.step.id}
        with open(job.step_dir / "stdout.log", "ab") as out, open(job.step_dir / "stderr.log", "ab") as err:
            popen = subprocess.Popen([sys.executable, "-P", "-m", _CHILD, str(job.run_dir), job.step_dir.name], env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                                     preexec_fn=_die_with_parent() if self.options.get("die_with_parent") else None)
        running = _Running(job, popen.pid, popen.pid, GroupWatch(popen.pid), time.monotonic(), popen=popen,
                           pidfd=_pidfd(popen.pid))
        self._procs[job.step.id] = running
        return running

    def _end_process(self, running: _Running) -> JobEnd:
        del self._procs[running.job.step.id]
        kill_group(running.pgid)  # what the step left behind; the unreaped leader keeps the group's id ours
        returncode, cpu_s, max_rss_mb = _reap(running.pid)
        self._kill_left(running)
        running.watch.wait_descendants(self.settings.term_grace_s, self.settings.poll_interval_s / 10)
        if running.popen is not None:
            running.popen.returncode = returncode
        _close_fd(running.pidfd)
        return self._job_end(running, returncode, cpu_s, max_rss_mb)

    def _kill_left(self, running: _Running) -> None:
        """Kill the step's processes that left its process group (found by the step's marker)."""
        wait_gone([running.job.token], running.job.step.id, self.settings.term_grace_s,
                  self.settings.poll_interval_s / 10)

    def _job_end(self, running: _Running, returncode: int | None, cpu_s: float | None,
                 max_rss_mb: float | None) -> JobEnd:
        remove_partial_writes(running.job.step_dir)  # a step killed (or crashing) mid-write leaves no litter
        outcome = read_outcome(running.job.step_dir)
        status, detail = classify(killed_for=running.killed_for, kill_detail=running.kill_detail,
                                  returncode=returncode, outcome=outcome)
        usage = (outcome or {}).get("usage") or {}
        watch = running.watch
        if cpu_s is None:
            cpu_s = usage.get("cpu_s", watch.cpu_s)
        peaks = [watch.peak_rss_mb, max_rss_mb or 0.0]
        threads = max(watch.peak_threads, int(usage.get("threads") or 0))
        return JobEnd(step_id=running.job.step.id, status=status, detail=detail,
                      wall_s=round(time.monotonic() - running.started, 4),
                      cpu_s=None if cpu_s is None else round(cpu_s, 4),
                      peak_rss_mb=round(max(peaks), 1) or None, threads_seen=threads or None, outcome=outcome)

    # -- in-process steps ------------------------------------------------------------------------------

    def _start_inproc(self, job: Job) -> _Running:
        for attempt in range(2):
            if self._worker is None:
                self._worker = self._spawn_worker(job.token)
            worker = self._worker
            try:
                assert worker.popen.stdin is not None
                worker.popen.stdin.write(f"{_worker_name(job, self.run_dir)}\n".encode())
                worker.popen.stdin.flush()
                break
            except (BrokenPipeError, OSError):
                if attempt:
                    raise
                self._stop_worker(worker)
                self._worker = None
        worker.watch.reset()
        running = _Running(job, worker.popen.pid, worker.popen.pid, worker.watch, time.monotonic())
        worker.current = running
        return running

    def _spawn_worker(self, token: str) -> _Worker:
        read_end, write_end = os.pipe()
        log = open(self.run_dir / "worker.log", "ab")
        try:
            popen = subprocess.Popen([sys.executable, "-P", "-m", _CHILD, "--worker", str(self.run_dir),
                                      str(write_end)], env={**os.environ, RUN_TOKEN: token},
                                     stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_end,),
                                     start_new_session=True,
                                     preexec_fn=_die_with_parent() if self.options.get("die_with_parent") else None)
        finally:
            os.close(write_end)
        os.set_blocking(read_end, False)
        return _Worker(popen, read_end, _pidfd(popen.pid), GroupWatch(popen.pid), log)

    def _poll_worker(self) -> list[JobEnd]:
        worker = self._worker
        if worker is None:
            return []
        ends = []
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(worker.notify, 4096):
                worker.buffer += chunk
        while b"\n" in worker.buffer:
            line, worker.buffer = worker.buffer.split(b"\n", 1)
            current = worker.current
            if current is not None and line.decode() == f"done {_worker_name(current.job, self.run_dir)}":
                current.watch.sample()
                self._kill_left(current)
                worker.current = None
                ends.append(self._job_end(current, None, None, None))
        if _exited(worker.popen.pid):
            current = worker.current
            kill_group(worker.popen.pid)
            returncode, _cpu, _rss = _reap(worker.popen.pid)
            worker.popen.returncode = returncode
            worker.watch.wait_descendants(self.settings.term_grace_s, self.settings.poll_interval_s / 10)
            worker.current = None
            self._stop_worker(worker)
            self._worker = None
            if current is not None:
                ends.append(self._job_end(current, returncode, None, None))
        return ends

    def _stop_worker(self, worker: _Worker) -> None:
        kill_group(worker.popen.pid)
        if worker.popen.returncode is None:
            returncode, _cpu, _rss = _reap(worker.popen.pid)
            worker.popen.returncode = returncode
        with contextlib.suppress(OSError):
            if worker.popen.stdin is not None:
                worker.popen.stdin.close()
        _close_fd(worker.notify)
        _close_fd(worker.pidfd)
        worker.log.close()

    # -- limits ----------------------------------------------------------------------------------------

    def _running(self) -> list[_Running]:
        current = self._worker.current if self._worker is not None else None
        return [*self._procs.values(), *([current] if current is not None else [])]

    def _next_check(self) -> float:
        """Seconds until a limit may need enforcing: the next sample, timeout or SIGKILL."""
        now = time.monotonic()
        waits = [self.settings.poll_interval_s]
        for running in self._running():
            waits.append(running.last_sample + self.settings.poll_interval_s - now)
            waits.append(running.started + running.job.timeout_s - now)
            if running.kill_at is not None:
                waits.append(running.kill_at - now)
        return max(0.0, min(waits))

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for running in self._running():
            if running.killed_for is not None:
                if running.kill_at is not None and now >= running.kill_at:
                    kill_group(running.pgid, signal.SIGKILL)
                    running.kill_at = None
                continue
            cap = running.job.step.limits.memory_cap_mb
            if now - running.last_sample >= self.settings.poll_interval_s:
                running.last_sample = now
                rss = running.watch.sample()
                if cap is not None and rss > cap:
                    self._kill(running, "oom", f"RSS of its process group reached {rss:.1f} MB, over its "
                               f"{cap} MB cap", self.settings.oom_grace_s)
                    continue
            if now - running.started > running.job.timeout_s:
                self._kill(running, "timeout", f"ran past its {running.job.timeout_s:g} s timeout",
                           self.settings.term_grace_s)

    def _kill(self, running: _Running, reason: str, detail: str, grace: float) -> None:
        running.killed_for, running.kill_detail = reason, f"{detail}; process group killed"
        if grace <= 0:
            kill_group(running.pgid, signal.SIGKILL)
        else:
            kill_group(running.pgid, signal.SIGTERM)
            running.kill_at = time.monotonic() + grace

    def _wait(self, timeout_s: float) -> None:
        """Sleep until a child exits, the worker writes, or ``timeout_s`` passes."""
        fds = [r.pidfd for r in self._procs.values() if r.pidfd is not None]
        if self._worker is not None:
            fds.append(self._worker.notify)
            if self._worker.pidfd is not None:
                fds.append(self._worker.pidfd)
        without_pidfd = any(r.pidfd is None for r in self._procs.values())
        if fds and not without_pidfd:
            select.select(fds, [], [], timeout_s)
        elif timeout_s > 0:
            time.sleep(min(timeout_s, self.settings.poll_interval_s / 4) if without_pidfd else timeout_s)


def _worker_name(job: Job, run_dir: Path) -> str:
    """How the worker is told of ``job``: its step id (``RUN_DIR/steps/<id>``), or the absolute path of a step
    directory elsewhere (a study's trial keeps its steps in its own run directory)."""
    return job.step.id if job.step_dir == run_dir / "steps" / job.step.id else str(job.step_dir)


def _die_with_parent() -> Any:
    """A ``preexec_fn`` that has the child SIGKILLed when its parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: Ray's own clean-up of a killed task is what remains
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGKILL)


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux >= 5.3), or ``None``."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _close_fd(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _exited(pid: int) -> bool:
    """Whether our child ``pid`` has ended, without reaping it (so its process group id stays ours)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _reap(pid: int) -> tuple[int | None, float | None, float | None]:
    """Wait for our child ``pid``: its exit status (negative for a signal), CPU seconds and max RSS in MB."""
    try:
        _pid, status, usage = os.wait4(pid, 0)
    except ChildProcessError:
        return None, None, None
    max_rss_mb = usage.ru_maxrss / (_MIB if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, max_rss_mb


def read_outcome(step_dir: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads((step_dir / "outcome.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
