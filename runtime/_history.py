"""The history store: a SQLite file every finished run adds its steps' observations to.

Two tables. ``runs``: one row per executor invocation (its id, plan hash, hardware fingerprint, when, run
directory, wall time, the makespan its plan expected). ``steps``: one row per step that ended in that
invocation (skipped steps ran nothing and are left out): its identity — step digest, family, parameters'
digest, data digest, rows × features of the prepared data where known, threads, memory cap — and what was
observed — status, wall and CPU seconds, peak RSS, GPU memory peak. Timings are kept apart per hardware
fingerprint (`tkplan.planner._history.hardware_fingerprint`): `read_history` returns only the runs of one
machine, never timings of another scaled.

Every write is one transaction (``BEGIN IMMEDIATE``), so a reader sees a run whole or not at all, and two
runs finishing at once wait for each other (up to `LOCK_WAIT_S`). Whatever goes wrong — the store locked
longer than that, damaged, not a SQLite file, a directory that cannot be created — is a `HistoryError`:
the executor reports it and goes on (a run never fails for its history), and the compile plans cold.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from tkplan.errors import HistoryError
from tkplan.planner._history import History, Observation, hardware_fingerprint, params_digest
from tkplan.planner._plan import Plan

if TYPE_CHECKING:
    from tkplan.runtime._results import StepResult

__all__ = ["LOCK_WAIT_S", "RunRecord", "forget", "list_runs", "read_history", "record_run", "step_observations"]

LOCK_WAIT_S = 5.0  # tkplan: ignore[constant]  how long a write waits for another run's transaction
_VERSION = 1  # tkplan: ignore[constant]  the store's schema version (PRAGMA user_version)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, plan_hash TEXT NOT NULL, fingerprint TEXT NOT NULL, finished_at REAL NOT NULL,
    run_dir TEXT NOT NULL, wall_s REAL, expected_s REAL);
CREATE TABLE IF NOT EXISTS steps (
    run TEXT NOT NULL REFERENCES runs(run) ON DELETE CASCADE, step TEXT NOT NULL, digest TEXT NOT NULL,
    family TEXT NOT NULL, params TEXT NOT NULL, data TEXT NOT NULL, rows INTEGER, features INTEGER,
    threads INTEGER NOT NULL, memory_cap_mb INTEGER, status TEXT NOT NULL, wall_s REAL, cpu_s REAL,
    peak_rss_mb REAL, gpu_peak_mb REAL, finished_at REAL NOT NULL, PRIMARY KEY (run, step));
CREATE INDEX IF NOT EXISTS steps_digest ON steps (digest);
CREATE INDEX IF NOT EXISTS steps_family ON steps (family);
"""  # tkplan: ignore[constant]  the store's schema
_COLUMNS = ("run", "step", "digest", "family", "params", "data", "rows", "features", "threads", "memory_cap_mb",
            "status", "wall_s", "cpu_s", "peak_rss_mb", "gpu_peak_mb", "finished_at")


@attrs.frozen
class RunRecord:
    """One run in the store, as ``tkplan history list`` shows it.

    Attributes:
        run: its id.
        plan_hash: the plan it ran.
        fingerprint: the hardware fingerprint it ran on.
        finished_at: when it ended (seconds since the epoch).
        run_dir: its run directory.
        wall_s: its wall time.
        expected_s: the makespan its plan expected (``None``: compiled without history).
        steps: how many steps it recorded.
        counts: how many ended in each status.
    """

    run: str
    plan_hash: str
    fingerprint: str
    finished_at: float
    run_dir: str
    wall_s: float | None
    expected_s: float | None
    steps: int
    counts: Mapping[str, int]


def record_run(store: Path, plan: Plan, results: Sequence[StepResult], run: str, run_dir: Path, wall_s: float,
               size: tuple[int | None, int | None]) -> int:
    """Append one run's ended steps to ``store`` (created with its directory if needed); return how many.

    Args:
        store: the SQLite file.
        plan: the plan that ran.
        results: the results of the steps that ended in this run (skipped ones are left out).
        run: the run's id.
        run_dir: its run directory.
        wall_s: its wall time.
        size: rows and features of the prepared data (``None``: not known, e.g. a trainer of one's own).

    Raises:
        HistoryError: the store cannot be created or written.
    """
    rows = []
    now = time.time()
    for r in results:
        if r.status == "skipped" or r.wall_s is None:
            continue
        step = plan.step(r.step_id)
        ended = (r.started_at or now - r.wall_s) + r.wall_s
        rows.append((run, step.id, step.digest, step.family, params_digest(step.params), step.data, size[0], size[1],
                     step.resources.threads, step.limits.memory_cap_mb, r.status, r.wall_s, r.cpu_s, r.peak_rss_mb,
                     r.gpu_peak_mb, round(ended, 3)))
    if not rows:
        return 0
    with _connect(store, create=True) as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (run, plan.plan_hash, hardware_fingerprint(plan.hardware), round(now, 3), str(run_dir), wall_s,
                    plan.schedule.expected_makespan_s))
        db.executemany(f"INSERT OR REPLACE INTO steps VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
        db.execute("COMMIT")
    return len(rows)


def read_history(store: Path, fingerprint: str) -> History:
    """The snapshot of ``store`` for the machine with ``fingerprint``: its runs' steps, oldest first.

    A store that does not exist yet is an empty history.

    Raises:
        HistoryError: the store cannot be read (locked too long, damaged, not a store).
    """
    if not store.exists():
        return History(str(store), fingerprint)
    with _connect(store) as db:
        found = db.execute(f"SELECT {', '.join('s.' + c for c in _COLUMNS)} FROM steps s JOIN runs r USING (run) "
                           "WHERE r.fingerprint = ? ORDER BY s.finished_at, s.run, s.step", (fingerprint,)).fetchall()
        others = db.execute("SELECT COUNT(*) FROM runs WHERE fingerprint != ?", (fingerprint,)).fetchone()[0]
    return History(str(store), fingerprint, tuple(Observation(*row) for row in found), int(others))


def list_runs(store: Path) -> list[RunRecord]:
    """Every run in ``store``, oldest first (none when it does not exist).

    Raises:
        HistoryError: the store cannot be read.
    """
    if not store.exists():
        return []
    with _connect(store) as db:
        runs = db.execute("SELECT run, plan_hash, fingerprint, finished_at, run_dir, wall_s, expected_s FROM runs "
                          "ORDER BY finished_at, run").fetchall()
        counts: dict[str, dict[str, int]] = {}
        for run, status, n in db.execute("SELECT run, status, COUNT(*) FROM steps GROUP BY run, status"):
            counts.setdefault(run, {})[status] = n
    return [RunRecord(run, plan_hash, fingerprint, finished_at, run_dir, wall_s, expected_s,
                      sum(counts.get(run, {}).values()), counts.get(run, {}))
            for run, plan_hash, fingerprint, finished_at, run_dir, wall_s, expected_s in runs]


def step_observations(store: Path, step: str) -> list[Observation]:
    """Every observation of the step with id ``step``, or whose digest starts with ``step``; oldest first.

    Raises:
        HistoryError: the store cannot be read.
    """
    if not store.exists():
        return []
    with _connect(store) as db:
        found = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM steps WHERE step = ? OR digest LIKE ? "
                           "ORDER BY finished_at, run", (step, _prefix(step))).fetchall()
    return [Observation(*row) for row in found]


def forget(store: Path, *, digest: str | None = None, family: str | None = None, older_than_s: float | None = None,
           run: str | None = None, everything: bool = False) -> int:
    """Delete observations from ``store``: of a step digest (or a prefix of one), of a family, older than
    ``older_than_s`` seconds, of one run, or all of them; the criteria given must all hold. Return how many.

    Runs left without a step go too.

    Raises:
        HistoryError: the store cannot be written.
        ValueError: no criterion given (and not ``everything``).
    """
    where, args = [], []
    if digest is not None:
        where.append("digest LIKE ?")
        args.append(_prefix(digest))
    if family is not None:
        where.append("family = ?")
        args.append(family)
    if older_than_s is not None:
        where.append("finished_at < ?")
        args.append(str(time.time() - older_than_s))
    if run is not None:
        where.append("run = ?")
        args.append(run)
    if not where and not everything:
        raise ValueError("say what to forget: a step digest, a family, an age, a run, or everything")
    if not store.exists():
        return 0
    with _connect(store) as db:
        db.execute("BEGIN IMMEDIATE")
        gone = db.execute("DELETE FROM steps" + (" WHERE " + " AND ".join(where) if where else ""), args).rowcount
        db.execute("DELETE FROM runs WHERE run NOT IN (SELECT DISTINCT run FROM steps)")
        db.execute("COMMIT")
    return int(gone)


def _prefix(text: str) -> str:
    """A LIKE pattern matching what starts with ``text`` (its own ``%`` and ``_`` taken literally)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@contextlib.contextmanager
def _connect(store: Path, *, create: bool = False) -> Iterator[sqlite3.Connection]:
    """An open store (schema made if needed); every SQLite or file error becomes a `HistoryError`."""
    db: sqlite3.Connection | None = None
    try:
        if create:
            store.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(store, timeout=LOCK_WAIT_S, isolation_level=None)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _VERSION):
            raise HistoryError(f"history store {store} has format {version}, this tkplan reads {_VERSION}: "
                               "pass another store (history.store) or remove it")
        if version == 0:
            db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {_VERSION}; COMMIT;")
        db.execute("PRAGMA foreign_keys = ON")
        yield db
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise HistoryError(f"history store {store} is locked by another process (waited {LOCK_WAIT_S:g} s); "
                               "try again when it is done") from None
        raise HistoryError(f"history store {store}: {exc}; {_REMEDY}") from None
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"history store {store} is damaged or not a history store ({exc}); {_REMEDY}") from None
    except OSError as exc:
        raise HistoryError(f"history store {store}: {exc.strerror or exc}; {_REMEDY}") from None
    finally:
        if db is not None:
            db.close()


_REMEDY = "remove that file, or set history.store to another path (or none)"  # tkplan: ignore[constant]
