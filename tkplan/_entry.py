"""The ``tkplan`` console script: a signal stops tkplan cleanly from its first instant, whatever it is doing.

Ctrl-C (SIGINT), SIGTERM, SIGHUP (the terminal closed) and SIGQUIT interrupt tkplan alike: the first one
raises `Interrupted` where the program is (``tkplan run`` then stops its steps and journals that it was
interrupted); later ones are ignored while that is handled, so a burst of Ctrl-Cs cannot cut the clean-up
short. The exit code is 128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, 131
for SIGQUIT. Only ``signal`` and ``sys`` load before the handlers are in place.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

__all__ = ["SIGNALS", "Interrupted", "interrupts", "run"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""The signals that stop tkplan as Ctrl-C does."""

_state: dict[str, Any] = {"depth": 0, "first": None}


class Interrupted(BaseException):
    """Raised when a stopping signal arrives (a `BaseException`, so no ``except Exception`` swallows it).

    Attributes:
        signum: the signal.
        exit_code: ``128 + signum``.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def _handle(signum: int, frame: Any) -> None:
    if _state["first"] is not None:  # a later signal of a burst: the first one is being handled
        return
    _state["first"] = signum
    raise Interrupted(signum)


@contextmanager
def interrupts() -> Iterator[None]:
    """Within the block, the first of `SIGNALS` raises `Interrupted` and later ones are ignored.

    Nested blocks share the first signal; the outermost restores the previous handlers. Outside the main
    thread, where handlers cannot be set, the block changes nothing.
    """
    try:
        previous = {sig: signal.signal(sig, _handle) for sig in SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    if _state["depth"] == 0:
        _state["first"] = None
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run() -> NoReturn:
    """Entry point of ``tkplan``: the command line, with an interrupt anywhere ending as `Interrupted` says.

    The handlers stay in place until the process exits, so no signal meets Python's default handler; a
    signal that arrived while they were blocked is handled as soon as they are in place. (Only the
    interpreter's own start-up, before any tkplan code runs, is outside their reach.)
    """
    for sig in SIGNALS:
        signal.signal(sig, _handle)
    _state["depth"] += 1
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        from tkplan.cli import main

        main(standalone_mode=True)
    except Interrupted as exc:
        sys.stderr.write("interrupted\n")
        sys.exit(exc.exit_code)
    sys.exit(0)
