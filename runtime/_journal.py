"""The run's journal: ``journal.jsonl``, one JSON object per line, appended and fsync'd record by record.

Records, each with ``event`` and ``time`` (seconds since the epoch):

* ``run_started``: ``plan_hash``, ``pid`` of the executor, ``resume``, ``drift`` (accepted differences),
  ``token`` (the marker its steps carry, ``tkplan.runtime._ours``);
* ``step_started``: ``step``, ``attempt``, ``token`` and what the engine needs to find the step's processes
  again (the local engine: ``pid``, ``pgid``, ``create_time``, ``start_ticks``, ``isolation``);
* ``step_finished``: ``step``, ``status``, ``detail``, ``wall_s``, ``adopted``;
* ``run_finished``: ``counts`` per status; ``run_interrupted``: the executor was stopped (Ctrl-C, SIGTERM);
* ``sweep_started`` (a sweep's run, after ``run_started``): ``sweep_hash``, ``points`` (how many), ``shared``
  (step → the points that share it, run once for all of them), ``reused`` (the steps that had ended ok in the
  directory before: taken, not run). ``run_started`` of a run that extends an earlier sweep's names that
  sweep's schedule in ``extends``.

A record is one ``write`` of one line to a file opened for appending, then ``fsync``: after a crash of the
executor, even ``kill -9``, every record that was written is there, and at most the last line is torn.
`read_journal` ignores a torn last line (cut short, or not a record); `Journal.open` cuts it off before
appending. A write that fails or is short (a full disk) is cut off at once and raises, so the journal
always ends with a whole record. Every record is checked on read: a damaged line before the last is a
`RunDirError` naming the line.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tkplan.errors import RunDirError
from tkplan.runtime._results import STATUSES as _STATUSES

__all__ = ["EVENTS", "Journal", "JournalState", "read_journal", "replay"]

EVENTS = (  # tkplan: ignore[constant]  the journal format
    "run_started", "step_started", "step_finished", "run_finished", "run_interrupted", "sweep_started",
    # a study's journal (``tkplan.runtime._study``): its trials around the steps they run
    "study_started", "trial_started", "trial_finished", "trial_requeued", "study_finished", "study_interrupted")


class Journal:
    """An open journal that appends durable records.

    Use `Journal.open`; close it with `close` (or use it as a context manager).
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._torn: OSError | None = None

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open ``path`` for appending, creating it, and cut off a torn last line left by a killed writer."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        size = os.fstat(fd).st_size
        if size:
            data = os.pread(fd, size, 0)
            keep = _whole(data)
            if keep != size:
                os.ftruncate(fd, keep)
                os.fsync(fd)
        else:
            _fsync_dir(path.parent)
        return cls(path, fd)

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one record and make it durable; return it.

        Raises:
            OSError: the write failed or was short (``ENOSPC``): the partial record is cut off again, and if
                that fails too, every later append raises the same error rather than write after it.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown journal event {event!r}; expected one of {', '.join(EVENTS)}")
        if self._torn is not None:
            raise self._torn
        record = {"event": event, "time": round(time.time(), 3), **fields}
        data = (json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        size = os.fstat(self._fd).st_size
        try:
            if os.write(self._fd, data) != len(data):
                raise OSError(errno.ENOSPC, "short write (no space left on device?)", str(self.path))
            os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, size)
            except OSError:
                self._torn = exc
            raise
        return record

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Read every record of a journal; a torn last line (the writer was killed mid-write) is left out.

    Raises:
        RunDirError: the journal cannot be read, or a line other than the last is not a journal record (the
            file was damaged or edited); the message names the file and line.

    .. versionadded:: 0.1
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read the journal: {exc.strerror or exc}") from None
    lines = data[:_whole(data)].split(b"\n")[:-1]
    records = []
    for number, line in enumerate(lines, 1):
        record, problem = _record(line)
        if problem:
            raise RunDirError(f"{path}:{number}: {problem}: {line[:80]!r}; the journal was damaged, "
                              "start the run again in a new directory")
        records.append(record)
    return records


def _record(line: bytes) -> tuple[dict[str, Any], str]:
    """The record on ``line``, or what is wrong with it."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return {}, "not a journal record (not JSON)"
    if not isinstance(record, dict) or record.get("event") not in EVENTS:
        return {}, "not a journal record (no known event)"
    if record["event"] in ("step_started", "step_finished") and not isinstance(record.get("step"), str):
        return {}, f"a {record['event']} record without a step"
    if record["event"] == "step_finished" and record.get("status") not in _STATUSES:
        return {}, f"a step_finished record with status {record.get('status')!r}"
    if record["event"] == "step_started" and not isinstance(record.get("attempt", 1), int):
        return {}, "a step_started record whose attempt is not a number"
    return record, ""


def _whole(data: bytes) -> int:
    """How many leading bytes of a journal are whole records: a torn or damaged last line is left out."""
    end = data.rfind(b"\n") + 1
    if end:
        last = data.rfind(b"\n", 0, end - 1) + 1
        if _record(data[last:end - 1])[1]:
            end = last
    return end


@attrs.frozen
class JournalState:
    """Where a run stands according to its journal.

    Attributes:
        finished: step id → its latest ``step_finished`` record (``--resume`` runs again those not ``ok``).
        unfinished: step id → the ``step_started`` record of a step that never finished (the executor died).
        attempts: step id → how many times it was started.
        runs: how many times an executor started on this run directory.
        tokens: the marker of each of those executors (``tkplan.runtime._ours``), oldest first.
    """

    finished: Mapping[str, Mapping[str, Any]]
    unfinished: Mapping[str, Mapping[str, Any]]
    attempts: Mapping[str, int]
    runs: int
    tokens: tuple[str, ...] = ()


def replay(records: Sequence[Mapping[str, Any]]) -> JournalState:
    """Fold journal records into a `JournalState`."""
    finished: dict[str, Mapping[str, Any]] = {}
    started: dict[str, Mapping[str, Any]] = {}
    attempts: dict[str, int] = {}
    runs = 0
    tokens: list[str] = []
    for record in records:
        event = record["event"]
        if event == "run_started":
            runs += 1
            if record.get("token"):
                tokens.append(str(record["token"]))
        elif event == "step_started":  # a step run again (--resume after it failed) is unfinished until it ends
            started[record["step"]] = record
            finished.pop(record["step"], None)
            attempts[record["step"]] = attempts.get(record["step"], 0) + 1
        elif event == "step_finished":
            finished[record["step"]] = record
            started.pop(record["step"], None)
    return JournalState(finished, started, attempts, runs, tuple(tokens))


def _fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
