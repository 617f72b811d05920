"""How an end is named: the executor's kill first, then the child's report, then the exit status."""

from __future__ import annotations

import pytest

from tkplan.runtime._classify import classify, signal_name

OK = {"status": "ok", "metrics": {}}
FAILED = {"status": "failed", "error": {"summary": "ValueError: bad", "traceback": "..."}}


@pytest.mark.parametrize(("killed_for", "returncode", "outcome", "expected"), [
    (None, 0, OK, ("ok", "")),
    (None, 1, FAILED, ("failed", "ValueError: bad")),
    ("timeout", -15, None, ("timeout", "why")),
    ("timeout", 0, OK, ("timeout", "why")),
    ("oom", -9, None, ("oom", "why")),
    (None, -11, None, ("crashed", "killed by SIGSEGV")),
    (None, -9, None, ("crashed", "killed by SIGKILL")),
    (None, 3, None, ("crashed", "exit code 3 without a result")),
    (None, 0, None, ("crashed", "exited 0 without writing a result")),
    (None, None, None, ("crashed", "ended without a result")),
    (None, -11, OK, ("ok", "")),
])
def test_classify(killed_for, returncode, outcome, expected):
    assert classify(killed_for=killed_for, kill_detail="why", returncode=returncode, outcome=outcome) == expected


def test_an_unknown_signal_is_numbered():
    assert (signal_name(6), signal_name(99)) == ("SIGABRT", "signal 99")
