"""The journal: durable lines, a torn last line tolerated, damage refused, state replayed."""

from __future__ import annotations

from typing import Any

import pytest

from tkplan.errors import RunDirError
from tkplan.runtime import read_journal
from tkplan.runtime._journal import Journal, replay


def test_records_are_appended_as_lines_and_read_back(tmp_path):
    with Journal.open(tmp_path / "journal.jsonl") as journal:
        journal.append("run_started", plan_hash="abc")
        journal.append("step_started", step="a", pid=10, pgid=10)
    records = read_journal(tmp_path / "journal.jsonl")
    assert [(r["event"], r.get("step")) for r in records] == [("run_started", None), ("step_started", "a")]
    assert all(isinstance(r["time"], float) for r in records)


def test_an_unknown_event_is_a_programming_error(tmp_path):
    with Journal.open(tmp_path / "journal.jsonl") as journal, pytest.raises(ValueError, match="unknown journal event"):
        journal.append("step_exploded")


def test_a_torn_last_line_is_ignored_on_read_and_cut_off_on_open(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"event":"run_started","time":1.0}\n{"event":"step_sta')
    assert read_journal(path) == [{"event": "run_started", "time": 1.0}]
    with Journal.open(path) as journal:
        journal.append("run_finished", counts={})
    assert [r["event"] for r in read_journal(path)] == ["run_started", "run_finished"]


def test_a_damaged_line_before_the_end_is_refused(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"event":"run_started","time":1.0}\nnot json\n{"event":"run_finished","time":2.0}\n')
    with pytest.raises(RunDirError, match=r"journal.jsonl:2: not a journal record"):
        read_journal(path)


def test_a_missing_journal_is_empty(tmp_path):
    assert read_journal(tmp_path / "journal.jsonl") == []


def test_replay_tells_finished_from_unfinished_steps():
    records: list[dict[str, Any]] = [
        {"event": "run_started"},
        {"event": "step_started", "step": "a", "pgid": 1},
        {"event": "step_started", "step": "b", "pgid": 2},
        {"event": "step_finished", "step": "a", "status": "failed"},
        {"event": "run_started"},
        {"event": "step_started", "step": "b", "pgid": 3},
        {"event": "step_finished", "step": "c", "status": "skipped"},
    ]
    state = replay(records)
    assert {k: v["status"] for k, v in state.finished.items()} == {"a": "failed", "c": "skipped"}
    assert {k: v["pgid"] for k, v in state.unfinished.items()} == {"b": 3}
    assert (dict(state.attempts), state.runs) == ({"a": 1, "b": 2}, 2)
