"""A fake engine: runs nothing, ends each job at the next poll as the test scripted. Drives the real executor loop.

It is also the smallest example of a new engine: one `Engine` subclass and one `register_engine` call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tkplan.runtime import Engine, ExecutorSettings, Job, JobEnd


class FakeEngine(Engine):
    """Ends one running job per `poll`, oldest first, with ``statuses[family]`` (default ``ok``).

    Attributes:
        statuses: family → the status its steps end with.
        last: the most recent instance, for the test to inspect.
        started: step ids in start order.
        at_start: for each start, the ids running right after it (itself included).
        most_at_once: the most jobs running at once.
        closed: whether `close` was called.
    """

    statuses: ClassVar[Mapping[str, str]] = {}
    last: ClassVar[FakeEngine | None] = None

    def __init__(self, run_dir: Path, settings: ExecutorSettings) -> None:
        super().__init__(run_dir, settings)
        self.running: dict[str, Job] = {}
        self.started: list[str] = []
        self.at_start: list[tuple[str, ...]] = []
        self.most_at_once = 0
        self.closed = False
        self.orphan_records: list[Mapping[str, Any]] = []
        type(self).last = self

    def start(self, job: Job) -> Mapping[str, Any]:
        self.running[job.step.id] = job
        self.started.append(job.step.id)
        self.at_start.append(tuple(self.running))
        self.most_at_once = max(self.most_at_once, len(self.running))
        return {"fake": True}

    def poll(self, timeout_s: float) -> list[JobEnd]:
        if not self.running:
            return []
        step_id, job = next(iter(self.running.items()))
        del self.running[step_id]
        status = self.statuses.get(job.step.family, "ok")
        outcome = {"status": "ok", "metrics": {"fake": 1}} if status == "ok" else None
        return [JobEnd(step_id, status, "" if status == "ok" else f"scripted {status}", 0.01, outcome=outcome)]

    def cancel(self, step_id: str) -> None:
        self.running.pop(step_id, None)

    def release_orphans(self, started: Sequence[Mapping[str, Any]], *, tokens: Sequence[str] = ()) -> None:
        self.orphan_records.extend(started)

    def close(self) -> None:
        self.running.clear()
        self.closed = True
