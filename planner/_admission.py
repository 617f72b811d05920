"""When a step may start: the one rule the executor follows and the planner's tests check.

A step starts only if, with it, the steps running at once stay within the plan's slots and thread
budget, and the VRAM caps of the steps on each GPU stay within that GPU's memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._plan import Schedule, Step

__all__ = ["can_start", "fits_alone"]


def can_start(step: Step, running: Sequence[Step], schedule: Schedule, hardware: HardwareSpec,
              max_parallel: int | None = None) -> bool:
    """Whether ``step`` may start while ``running`` run.

    Args:
        step: the candidate.
        running: the steps running now.
        schedule: the plan's schedule (thread budget, slots).
        hardware: the plan's hardware (GPU memory).
        max_parallel: a lower slot count asked at run time (``tkplan run --max-parallel``).
    """
    slots = min(schedule.max_parallel, max_parallel or schedule.max_parallel)
    if len(running) >= slots:
        return False
    if sum(s.resources.threads for s in running) + step.resources.threads > schedule.thread_budget:
        return False
    memory = {g.uuid: g.memory_mb for g in hardware.gpus}
    for uuid in step.resources.gpus:
        used = sum(s.limits.vram_cap_mb or 0 for s in running if uuid in s.resources.gpus)
        if used + (step.limits.vram_cap_mb or 0) > memory.get(uuid, 0):
            return False
    return True


def fits_alone(step: Step, schedule: Schedule, hardware: HardwareSpec) -> bool:
    """Whether ``step`` could ever start: it fits the machine with nothing else running."""
    return can_start(step, (), schedule, hardware)
