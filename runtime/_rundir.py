"""The run directory: one per plan, locked while a run uses it, holding everything the run produced.

Layout::

    <run_dir>/
      .lock                the lock (``flock``): held by the running executor, released when it dies
      plan.json            the plan that runs here, as compiled (another plan's run is refused)
      journal.jsonl        what happened, append-only (see ``tkplan.runtime._journal``)
      summary.json         every step's result after the last run
      sweep.json           a sweep's run: the record of its points (``tkplan.runtime._sweeprun``); plan.json is
                           then the sweep's schedule, which a later sweep may extend (`RunDir.open`)
      worker.log           output of the in-process worker outside its steps
      steps/<id>/          step.json (what the child reads), outcome.json (what the child reports),
                           result.json (the executor's record), metrics.json (the trainer's metrics, when it
                           returned some), stdout.log, stderr.log, and the trainer's files (model, predictions)
      attempts/<id>/<n>/   the files of the n-th attempt that a dead executor left unfinished, moved aside
                           before ``--resume`` runs the step again

Files are written atomically (``tkplan._io``).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Literal

from tkplan._io import remove_partial_writes, write_text_atomic
from tkplan.errors import RunDirError
from tkplan.planner._plan import Plan, plan_to_json
from tkplan.runtime._journal import Journal, read_journal

__all__ = ["RunDir", "default_run_dir", "fresh_run_dir"]

_LOCK = ".lock"


def default_run_dir(plan: Plan, cwd: Path) -> Path:
    """``<run.output_dir>/<run.name>-<plan_hash[:12]>``, relative to ``cwd``.

    .. versionadded:: 0.1
    """
    run = plan.config["run"]
    return Path(cwd) / str(run["output_dir"]) / f"{run['name']}-{plan.plan_hash[:12]}"


def fresh_run_dir(path: Path) -> Path:
    """``path`` if it is free (absent or empty), else the first free ``<path>-2``, ``<path>-3``, …

    .. versionadded:: 0.1
    """
    path, n = Path(path), 1
    candidate = path
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


class RunDir:
    """A locked run directory. Open it with `RunDir.open`; `close` releases the lock.

    Attributes:
        path: the directory.
        records: the journal's records when it was opened.
        journal: the open journal, for appending.
    """

    def __init__(self, path: Path, lock_fd: int, records: list[dict[str, Any]], journal: Journal,
                 extended: str | None = None) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self.records = records
        self.journal = journal
        self.extended = extended

    @classmethod
    def open(cls, path: Path, plan: Plan, *, resume: bool, extend: Literal["finished", "any"] | None = None) -> RunDir:
        """Create or reopen ``path`` for ``plan`` and lock it.

        Args:
            path: the run directory.
            plan: the plan to run there.
            resume: a started run of ``plan`` there may go on.
            extend: ``plan`` is a sweep's schedule, which may *extend* the sweep run there: a directory whose
                plan is another sweep's schedule, every step of it a step of ``plan`` (same id, same
                digest), takes ``plan`` in its place (``extended`` then holds the earlier plan's hash).
                ``"finished"``: only when the earlier run finished; ``"any"``: also an interrupted one.

        Raises:
            RunDirError: another run holds the lock; the directory holds another plan's run (for ``extend``:
                one that ``plan`` does not extend, or an unfinished one), or files that are not a run's; it
                holds a started run and ``resume`` is false.
        """
        path = Path(path).absolute()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create the run directory {path}: {exc.strerror}") from None
        lock_fd = _lock(path)
        try:
            entries = {p.name for p in path.iterdir()} - {_LOCK}
            plan_file = path / "plan.json"
            if entries and "plan.json" not in entries:
                raise RunDirError(f"{path} is not empty and holds no tkplan run (no plan.json); "
                                  "pass --out with a new or empty directory")
            records = read_journal(path / "journal.jsonl")
            extended = None
            if "plan.json" in entries:
                found = _recorded_hash(plan_file)
                if found != plan.plan_hash and extend is None:
                    raise RunDirError(f"{path} holds the run of another plan (plan_hash {found[:12]}…, this plan "
                                      f"{plan.plan_hash[:12]}…); pass --out with another directory")
                if found != plan.plan_hash:
                    _check_extension(path, plan, records, unfinished_ok=extend == "any")
                    extended = found
            _check_steps(path / "journal.jsonl", records, plan)
            if records and not resume:
                raise RunDirError(f"{path} already holds a run of this plan (journal.jsonl, {len(records)} records); "
                                  "pass --resume to finish it, or --out with another directory")
            if "plan.json" not in entries or extended:
                write_text_atomic(plan_file, plan_to_json(plan))
            (path / "steps").mkdir(exist_ok=True)
            journal = Journal.open(path / "journal.jsonl")
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, lock_fd, records, journal, extended)

    def step_dir(self, step_id: str) -> Path:
        """The directory of ``step_id``'s files."""
        return self.path / "steps" / step_id

    def fresh_step_dir(self, step_id: str) -> Path:
        """An empty directory for a new attempt of ``step_id``; files of an unfinished earlier one move aside
        (without what its killed writers left half-written)."""
        directory = self.step_dir(step_id)
        if directory.exists():
            remove_partial_writes(directory)
            if any(directory.iterdir()):
                aside = self.path / "attempts" / step_id
                aside.mkdir(parents=True, exist_ok=True)
                n = 1
                while (aside / str(n)).exists():
                    n += 1
                os.replace(directory, aside / str(n))
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def close(self) -> None:
        """Close the journal and release the lock."""
        self.journal.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock(path: Path) -> int:
    """Take the run directory's lock and write our pid into it; refuse if another process holds it."""
    fd = os.open(path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise RunDirError(f"{path} is locked by another tkplan run (pid {holder}); wait for it to finish, "
                          "or pass --out with another directory") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _check_steps(journal: Path, records: list[dict[str, Any]], plan: Plan) -> None:
    """Every step the journal names is a step of the plan."""
    ids = {s.id for s in plan.steps}
    for number, record in enumerate(records, 1):
        if "step" in record and record["step"] not in ids:
            raise RunDirError(f"{journal}:{number}: step {record['step']!r} is not in the plan; the journal was "
                              "damaged, start the run again in a new directory")


def _recorded_hash(plan_file: Path) -> str:
    try:
        data = json.loads(plan_file.read_text("utf-8"))
        return str(data["plan_hash"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(f"{plan_file} is not a readable plan; pass --out with another directory") from None


def _check_extension(path: Path, plan: Plan, records: list[dict[str, Any]], *, unfinished_ok: bool) -> None:
    """Refuse unless ``plan`` extends the sweep run in ``path``: every step of its plan, the same work, in ``plan``.

    The directory must hold a sweep's run (``sweep.json``), its run finished unless ``unfinished_ok``.
    """
    if not (path / "sweep.json").is_file():
        raise RunDirError(f"{path} holds the run of a plan, not of a sweep; a sweep runs in a directory of its own "
                          "or extends an earlier sweep's: pass --out with another directory")
    try:
        earlier = json.loads((path / "plan.json").read_text("utf-8"))
        digests = {str(s["id"]): s.get("digest") for s in earlier["steps"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(f"{path / 'plan.json'} is not a readable plan; pass --out with another directory") from None
    ours = {s.id: s.digest for s in plan.steps}
    missing = sorted(i for i, d in digests.items() if ours.get(i) != d)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise RunDirError(f"{path} holds the run of a sweep that this sweep does not extend: {len(missing)} of its "
                          f"steps are not steps of this sweep ({shown}); a sweep extends another when it has every "
                          "step of it (more values on an axis): pass --out with another directory")
    runs = [r["event"] for r in records if r["event"] in ("run_started", "run_finished", "run_interrupted")]
    if runs and runs[-1] != "run_finished" and not unfinished_ok:
        raise RunDirError(f"{path} holds an unfinished run of an earlier sweep; pass --resume to finish it as part "
                          "of this one, or --out with another directory")
