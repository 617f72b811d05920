"""How a step's end is named: from why it was killed, its exit status, and what its child reported. Pure.

Precedence: a kill by the executor (timeout, memory cap, cancel) names the end whatever the process did
afterwards; then the child's own report (``ok`` with its note, ``failed`` with its exception, or ``timeout`` /
``oom`` when the step's own watchdog stopped it after the executor died); then the exit status of a
process that reported nothing: a signal (``crashed``, the signal named) or an exit code (``crashed``).
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

__all__ = ["classify", "signal_name"]


def signal_name(number: int) -> str:
    """``11`` → ``"SIGSEGV"``; an unknown number → ``"signal 99"``."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify(*, killed_for: str | None, kill_detail: str = "", returncode: int | None,
             outcome: Mapping[str, Any] | None) -> tuple[str, str]:
    """Name a step's end.

    Args:
        killed_for: ``"timeout"``, ``"oom"`` or ``"cancelled"`` when the executor killed the step, else ``None``.
        kill_detail: the executor's words for that kill (``"ran past its 2 s timeout"``).
        returncode: the process's exit status as ``subprocess`` gives it (negative: killed by that
            signal), or ``None`` when the step ran in a shared worker that is still alive.
        outcome: the child's report (``outcome.json``), or ``None`` if it wrote none.

    Returns:
        ``(status, detail)``.

    .. versionadded:: 0.1
    """
    if killed_for is not None:
        return killed_for, kill_detail
    if outcome is not None:
        if outcome.get("status") == "ok":
            return "ok", str(outcome.get("note") or "")
        if outcome.get("status") in ("timeout", "oom"):  # its own watchdog stopped it (tkplan.runtime._guard)
            return str(outcome["status"]), str(outcome.get("detail") or "")
        error = outcome.get("error") or {}
        return "failed", str(error.get("summary") or "the trainer raised")
    if returncode is None:
        return "crashed", "ended without a result"
    if returncode < 0:
        return "crashed", f"killed by {signal_name(-returncode)}"
    if returncode > 0:
        return "crashed", f"exit code {returncode} without a result"
    return "crashed", "exited 0 without writing a result"
