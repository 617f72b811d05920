"""Watch a step's processes from outside: RSS, threads and CPU time of a process and its descendants.

The local engine samples each running step with a `GroupWatch` every ``poll_interval_s`` and kills the
step's process group when the RSS sum goes over its memory cap. RSS is summed over the processes, so pages
they share count once per process: the figure errs high, never low.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

__all__ = ["GroupWatch", "group_members", "kill_group"]

_MIB = 2**20
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


class GroupWatch:
    """Samples a process and its descendants, keeping the peaks since the last `reset`.

    Args:
        pid: the root process (a step's child, or the in-process worker).

    Attributes:
        create_time: the root's creation time (with the pid, it names the process for good), or ``None``
            if it was already gone.
        peak_rss_mb: the highest RSS sum seen.
        peak_threads: the most threads seen at once.
        cpu_s: CPU time of the tree at the last sample, less the CPU time at the last `reset`.
        descendants: the root's descendants at the last sample.
    """

    def __init__(self, pid: int) -> None:
        try:
            self._root: psutil.Process | None = psutil.Process(pid)
            self.create_time: float | None = self._root.create_time()
        except _GONE:
            self._root, self.create_time = None, None
        self.peak_rss_mb = 0.0
        self.peak_threads = 0
        self.cpu_s = 0.0
        self._cpu_base = 0.0
        self._cpu_total = 0.0
        self.descendants: list[psutil.Process] = []

    def sample(self) -> float:
        """Measure the tree now; return its RSS sum in MB (0 when it is gone)."""
        if self._root is None:
            return 0.0
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except _GONE:
            return 0.0
        self.descendants = procs[1:]
        rss = threads = 0
        cpu = 0.0
        for proc in procs:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    times = proc.cpu_times()
                    cpu += times.user + times.system + times.children_user + times.children_system
            except _GONE:
                continue
        rss_mb = rss / _MIB
        self.peak_rss_mb = max(self.peak_rss_mb, rss_mb)
        self.peak_threads = max(self.peak_threads, threads)
        self._cpu_total = max(self._cpu_total, cpu)
        self.cpu_s = self._cpu_total - self._cpu_base
        return rss_mb

    def wait_descendants(self, timeout_s: float, poll_s: float) -> bool:
        """Wait until the descendants last seen have exited (killed ones take a moment); whether they all did."""
        deadline = time.monotonic() + timeout_s
        while any(_alive(p) for p in self.descendants):
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True

    def reset(self) -> None:
        """Start new peaks and a new CPU count (the in-process worker, between steps)."""
        self.sample()
        self.peak_rss_mb, self.peak_threads = 0.0, 0
        self._cpu_base, self.cpu_s = self._cpu_total, 0.0


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except _GONE:
        return False


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to every process of the group ``pgid``; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int, created_since: float | None = None) -> list[psutil.Process]:
    """Live (not zombie) processes of the group ``pgid``, created at or after ``created_since`` if given."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if created_since is not None and proc.create_time() < created_since:
                continue
        except (ProcessLookupError, *_GONE):
            continue
        members.append(proc)
    return members
