"""A step's own watchdog: its timeout and memory cap hold even when no executor watches it any more.

While the executor lives, it enforces a step's limits (``tkplan.runtime._local``) and the guard only looks
at whether it still has a parent. When the executor dies (``kill -9``, a crash, a closed terminal), the
step's child is re-parented and its guard — a daemon thread started in the child before the trainer —
takes over: every ``poll_s`` it checks the wall time since the step started and the RSS of the child and
its descendants. Past the timeout or over the cap, it writes the step's ``outcome.json`` (status
``timeout`` or ``oom``) and kills the step's processes: those carrying the step's marker
(``tkplan.runtime._ours``), then its own process group, itself included. ``--resume`` then takes that end
as it is instead of running the step again.

Why a guard inside the child and not ``PR_SET_PDEATHSIG``: a step whose executor died may still finish,
and ``--resume`` adopts its result (nothing is lost or run twice); a parent-death signal would kill every
step the moment the executor dies, and it is tied to the thread that started the child. The guard is a
thread, so it needs the GIL: a trainer that holds it in native code delays the check until it lets go
(numpy, LightGBM, XGBoost and torch release it in their long calls).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Guard"]


class Guard:
    """Watch this process and its descendants for the step described by ``watch``; act once orphaned.

    Args:
        step_id: the step.
        watch: ``{"timeout_s", "memory_cap_mb", "poll_s"}`` from the step's ``step.json``.
        report: writes the outcome (a mapping) of a step the guard stops.
    """

    def __init__(self, step_id: str, watch: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> None:
        self.step_id = step_id
        self.timeout_s = float(watch["timeout_s"])
        self.cap_mb = watch.get("memory_cap_mb")
        self.poll_s = float(watch["poll_s"])
        self.report = report
        self.parent = os.getppid()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tkplan-guard", daemon=True)

    def __enter__(self) -> Guard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        watch = None
        while not self._stop.wait(self.poll_s):
            if os.getppid() == self.parent:
                continue
            elapsed = time.monotonic() - self.started
            if elapsed > self.timeout_s:
                self._kill("timeout", f"ran past its {self.timeout_s:g} s timeout")
            if self.cap_mb is not None:
                if watch is None:
                    from tkplan.runtime._watchdog import GroupWatch

                    watch = GroupWatch(os.getpid())
                rss = watch.sample()
                if rss > self.cap_mb:
                    self._kill("oom", f"RSS reached {rss:.1f} MB, over its {self.cap_mb} MB cap")

    def _kill(self, status: str, detail: str) -> None:
        from tkplan.runtime._ours import RUN_TOKEN, kill_marked

        detail += "; stopped by its own watchdog, the executor having died; process group killed"
        try:
            self.report({"step": self.step_id, "status": status, "detail": detail, "metrics": {}, "output": {},
                         "error": None, "applied": {}, "usage": {"wall_s": round(time.monotonic() - self.started, 6)}})
        finally:
            token = os.environ.get(RUN_TOKEN)
            if token:
                kill_marked([token], self.step_id)
            os.killpg(os.getpgrp(), signal.SIGKILL)
