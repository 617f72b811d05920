"""A sweep as the executor runs it: the union of its points' steps as one plan, and where each step comes from.

``tkplan run sweep.json`` runs the sweep's schedule (its union plan) exactly as a plan runs, in one run
directory: one journal, one lock, one budget, each distinct step once. What a sweep adds:

- each step's child gets the configuration of its *home* (the point plan it comes from: its data, its
  families' settings), not the union's;
- the run directory keeps ``sweep.json``, the record of the sweep's points (see `record`): the reports read
  it for the metric against each swept key and the ablation leaderboard;
- the journal gets a ``sweep_started`` record after ``run_started``: the sweep's hash, its points, the steps
  shared by several points and the steps an earlier run there had ended ok already (reused, not run);
- the run directory of a sweep takes a later sweep whose steps include all of its own (same ids, same
  digests): an *extension*, which runs only what has not ended ok there (`tkplan.runtime._rundir`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tkplan._io import write_text_atomic
from tkplan.errors import RunDirError
from tkplan.planner._convert import JsonMap, freeze, thaw
from tkplan.planner._plan import Plan

__all__ = ["RECORD_FILE", "SweepRun", "default_sweep_dir", "write_record"]

RECORD_FILE = "sweep.json"  # tkplan: ignore[constant]  the record's name in the run directory


@attrs.frozen
class SweepRun:
    """What the executor needs to run a sweep.

    Attributes:
        plan: the sweep's union plan (its schedule): every distinct step once, one budget.
        homes: union step id → the point plan it comes from; its configuration and data are the step's.
        record: the run directory's ``sweep.json`` as the sweep gives it (JSON-ready): ``sweep_hash``,
            ``axes`` (key → values), ``points`` (``values``, ``overrides``, ``plan_hash``, ``steps``: union
            ids, ``shared``: union id → the point it runs for, where another point runs it), ``shared``
            (union id → the points that use it, for the steps several points use).

    .. versionadded:: 0.1
    """

    plan: Plan
    homes: Mapping[str, Plan]
    record: JsonMap = attrs.field(converter=freeze)

    @property
    def sweep_hash(self) -> str:
        """The sweep's hash."""
        return str(self.record["sweep_hash"])


def default_sweep_dir(sweep: SweepRun, cwd: Path) -> Path:
    """``<run.output_dir>/<run.name>-sweep-<sweep_hash[:12]>``, relative to ``cwd`` (the first point's settings).

    .. versionadded:: 0.1
    """
    run = sweep.plan.config["run"]
    return Path(cwd) / str(run["output_dir"]) / f"{run['name']}-sweep-{sweep.sweep_hash[:12]}"


def write_record(run_dir: Path, sweep: SweepRun, done: set[str]) -> dict[str, Any]:
    """Write ``run_dir/sweep.json`` for this run of ``sweep`` and return the journal's ``sweep_started`` fields.

    Args:
        run_dir: the (locked) run directory.
        sweep: the sweep being run.
        done: the steps that had ended ok there before this run started.

    The record adds ``reused`` (the steps an earlier run in the directory had ended ok when this sweep
    first ran there: taken, not run) and ``history`` (the hashes of the sweeps run there, oldest first).
    A resumed sweep keeps its first run's ``reused``.

    Raises:
        RunDirError: the directory's ``sweep.json`` is damaged.
    """
    path = Path(run_dir) / RECORD_FILE
    earlier: dict[str, Any] = {}
    if path.exists():
        try:
            earlier = json.loads(path.read_text("utf-8"))
            if not isinstance(earlier, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{path}: unreadable ({str(exc)[:200]}); the run directory was damaged or edited: "
                              "pass --out with another directory") from None
    record = thaw(sweep.record)
    history = [h for h in earlier.get("history", []) if isinstance(h, str)]
    if earlier.get("sweep_hash") == sweep.sweep_hash:
        reused = [s for s in earlier.get("reused", []) if s in {st.id for st in sweep.plan.steps}]
    else:
        reused = sorted(done)
        history.append(sweep.sweep_hash)
    record.update(reused=reused, history=history or [sweep.sweep_hash])
    write_text_atomic(path, json.dumps(record, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    return {"sweep_hash": sweep.sweep_hash, "points": len(record["points"]), "shared": record["shared"],
            "reused": sorted(done)}
