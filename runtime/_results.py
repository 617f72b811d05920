"""What a run records: each step's end (status, observed usage next to the plan's allowance) and the summary.

A step ends in one of `STATUSES`:

==========  ==================================================================================
``ok``      the trainer returned its results
``failed``  the trainer raised; the traceback is kept in ``error``
``timeout`` the step ran past ``limits.timeout_s`` (or the run's deadline); its process group was killed
``oom``     the RSS of its process group went over ``limits.memory_cap_mb``; the group was killed
``crashed`` the process died without a result: a signal (``detail`` names it) or an exit code
``skipped`` not run: a step it depends on did not end ``ok``, or the run's deadline had passed
``pruned``  stopped by ``tkplan tune``'s pruner while it trained (its curve so far is kept in ``output``)
==========  ==================================================================================
"""

from __future__ import annotations

from typing import Any

import attrs

from tkplan.planner._convert import JsonMap, freeze
from tkplan.planner._plan import Step

__all__ = ["STATUSES", "Allowance", "RunSummary", "StepResult"]

STATUSES = (  # tkplan: ignore[constant]  the result format
    "ok", "failed", "timeout", "oom", "crashed", "skipped", "pruned")


@attrs.frozen
class Allowance:
    """What the plan allowed a step: threads, timeout, memory and VRAM caps (``None``: no cap)."""

    threads: int
    timeout_s: int
    memory_cap_mb: int | None
    vram_cap_mb: int | None

    @classmethod
    def of(cls, step: Step) -> Allowance:
        """The allowance of ``step``."""
        return cls(step.resources.threads, step.limits.timeout_s, step.limits.memory_cap_mb, step.limits.vram_cap_mb)


@attrs.frozen
class StepResult:
    """How one step ended, what it used, what it was allowed, and what it produced.

    Attributes:
        step_id: the step.
        status: one of `STATUSES`.
        detail: one line on why: ``"killed by SIGSEGV"``, ``"ValueError: bad input"``, ``""`` when ok.
        allowed: the plan's allowance for the step.
        attempt: 1 for the first start; a step re-run by ``--resume`` has a higher number.
        started_at: when it started (seconds since the epoch); ``None`` if it never started.
        wall_s: wall time from start to end as the executor saw it.
        cpu_s: CPU time (user + system) of the step's processes.
        peak_rss_mb: the highest RSS of the step's process group seen (the sum over its processes).
        threads_seen: the most threads its process group was seen running at once.
        gpu_peak_mb: the most GPU memory the step's framework held (torch's peak reserved, TF's peak in use);
            ``None`` without a GPU or a framework that reports it.
        pools: the thread pools loaded in the step's process at its end (``threadpoolctl.threadpool_info()``).
        applied: the limits the child applied before the trainer ran (threadpoolctl, torch, TF settings).
        metrics: the trainer's ``"metrics"``.
        output: the rest of what the trainer returned.
        error: the traceback of a failed step.
        adopted: the step finished while no executor watched it (the executor had been killed), and
            ``--resume`` took its result instead of running it again.

    .. versionadded:: 0.1
    """

    step_id: str
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    detail: str
    allowed: Allowance
    attempt: int = 1
    started_at: float | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    threads_seen: int | None = None
    gpu_peak_mb: float | None = None
    pools: tuple[JsonMap, ...] = attrs.field(default=(), converter=freeze)
    applied: JsonMap = attrs.field(factory=dict, converter=freeze)
    metrics: JsonMap = attrs.field(factory=dict, converter=freeze)
    output: JsonMap = attrs.field(factory=dict, converter=freeze)
    error: str | None = None
    adopted: bool = False

    @property
    def ok(self) -> bool:
        """Whether the step ended ``ok``."""
        return self.status == "ok"


@attrs.frozen
class RunSummary:
    """Every step's result, in the plan's order, after a run (including steps finished by earlier runs).

    Attributes:
        plan_hash: the plan that ran.
        run_dir: where its files are.
        results: one per step of the plan, in ``schedule.order``.
        wall_s: this invocation's wall time.
        counts: how many steps ended in each status (every status listed, zeros included).

    .. versionadded:: 0.1
    """

    plan_hash: str
    run_dir: str
    results: tuple[StepResult, ...]
    wall_s: float
    counts: JsonMap = attrs.field(converter=freeze)

    @classmethod
    def of(cls, plan_hash: str, run_dir: str, results: tuple[StepResult, ...], wall_s: float) -> RunSummary:
        """Build the summary, counting statuses."""
        counts: dict[str, Any] = {s: sum(r.status == s for r in results) for s in STATUSES}
        return cls(plan_hash, run_dir, results, wall_s, counts)

    @property
    def ok(self) -> bool:
        """Whether every step ended ``ok``."""
        return all(r.ok for r in self.results)
