"""Which processes are a run's own, beyond doubt: the marker each step carries in its environment.

Every process of a step starts with ``TKPLAN_RUN_TOKEN=<token>`` (a random 128-bit token drawn per
executor invocation and journaled) and ``TKPLAN_STEP_ID=<id>`` in its environment, and its descendants
inherit both, whether or not they stay in the step's process group (``setsid``). ``/proc/<pid>/environ``
shows the environment a process started with, so the marker cannot be faked by a stranger: it is known
only to the run. A process group is signalled only when its leader carries the marker *and* still has the
exact start time (``/proc/<pid>/stat``, clock ticks since boot) journaled when the step started; a reused
pid, a reboot, or a group left to someone else fails the check and is never signalled.

Linux only: where ``/proc`` is missing nothing is found, so nothing is signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

__all__ = ["RUN_TOKEN", "STEP_ID", "is_leader", "kill_marked", "marked", "new_token", "start_ticks", "wait_gone"]

RUN_TOKEN = "TKPLAN_RUN_TOKEN"  # tkplan: ignore[constant]  the marker's variable names
STEP_ID = "TKPLAN_STEP_ID"  # tkplan: ignore[constant]
_PROC = "/proc"  # tkplan: ignore[constant]


def new_token() -> str:
    """A fresh random token for one executor invocation."""
    import secrets

    return secrets.token_hex(16)


def start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), or ``None``."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _environ(pid: int) -> bytes:
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as fh:
            return b"\0" + fh.read()
    except OSError:
        return b""


def _carries(environ: bytes, tokens: Iterable[str], step_id: str | None) -> bool:
    if step_id is not None and f"\0{STEP_ID}={step_id}\0".encode() not in environ:
        return False
    return any(f"\0{RUN_TOKEN}={token}\0".encode() in environ for token in tokens if token)


def is_leader(pid: int, ticks: int | None, token: str) -> bool:
    """Whether ``pid`` is the very process a step started: the journaled start time and the run's marker."""
    if not token or ticks is None or start_ticks(pid) != ticks:
        return False
    return _carries(_environ(pid), [token], None) and start_ticks(pid) == ticks


def marked(tokens: Iterable[str], step_id: str | None = None) -> list[int]:
    """Live processes carrying one of ``tokens`` (and ``step_id``, when given); never this process."""
    tokens = [t for t in tokens if t]
    if not tokens:
        return []
    try:
        pids = [int(name) for name in os.listdir(_PROC) if name.isdigit()]
    except OSError:
        return []
    me = os.getpid()
    return [pid for pid in pids if pid != me and _carries(_environ(pid), tokens, step_id) and not _zombie(pid)]


def _zombie(pid: int) -> bool:
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2:][:1] in (b"Z", b"X")
    except (OSError, ValueError):
        return True


def kill_marked(tokens: Iterable[str], step_id: str | None = None, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to every process `marked` finds; return their pids."""
    pids = marked(tokens, step_id)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return pids


def wait_gone(tokens: Iterable[str], step_id: str | None, timeout_s: float, poll_s: float) -> bool:
    """SIGKILL the marked processes until none is left (a dying one may fork); whether none is left."""
    tokens = list(tokens)
    deadline = time.monotonic() + timeout_s
    while kill_marked(tokens, step_id):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True
