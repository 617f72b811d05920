"""Each step's plan next to what it used: threads, memory, time, GPU memory.

Threads are compared where the plan has a say: the thread pools inside the step — the OpenMP and BLAS pools
threadpoolctl found at its end, the intra-op threads torch or TensorFlow were set to, the threads the family's
library was given — against the threads the plan allowed (a framework's inter-op pool, which the plan keeps
small on its own, is shown but not judged). The largest pool over the allowance is
oversubscription. The process's OS thread count is shown too, but not judged: it also counts the
interpreter's main thread, I/O and framework helper threads that sit idle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tkplan.planner._plan import Step
from tkplan.runtime import StepResult

__all__ = ["Usage", "largest_pool", "thread_pools", "usage"]

_FRAMEWORK_POOLS = {"torch": ("num_threads", "num_interop_threads"), "tf": ("intra_op_threads", "inter_op_threads")}


@attrs.frozen
class Usage:
    """One step's allowance next to its observation (``None``: not observed, or no cap).

    Attributes:
        step_id, family, status, detail: the step and how it ended.
        pools: pool name → its size, as the step ran (``{"openmp": 2, "torch.intra_op": 2}``).
        threads_allowed: the plan's threads for the step; ``threads_used`` the largest pool.
        oversubscribed: a pool ran more threads than the plan allowed.
        os_threads: the most OS threads the step's processes had at once.
        peak_rss_mb / memory_cap_mb, wall_s / timeout_s, cpu_s, gpu_peak_mb / vram_cap_mb: the rest.
        device: ``cpu``, ``cuda`` or ``mps``; ``gpus`` the step's GPU UUIDs.
    """

    step_id: str
    family: str
    status: str
    detail: str
    pools: Mapping[str, int]
    threads_allowed: int
    threads_used: int | None
    oversubscribed: bool
    os_threads: int | None
    peak_rss_mb: float | None
    memory_cap_mb: int | None
    wall_s: float | None
    timeout_s: int
    cpu_s: float | None
    gpu_peak_mb: float | None
    vram_cap_mb: int | None
    device: str
    gpus: tuple[str, ...]


def thread_pools(result: StepResult) -> dict[str, int]:
    """The sizes of the thread pools the plan controls inside the step, by name."""
    pools: dict[str, int] = {}
    for pool in result.pools:
        name, size = str(pool.get("internal_api") or pool.get("user_api") or "?"), pool.get("num_threads")
        if isinstance(size, int):
            pools[name] = max(size, pools.get(name, 0))
    for framework, keys in _FRAMEWORK_POOLS.items():
        applied = result.applied.get(framework)
        for key in keys:
            if isinstance(applied, Mapping) and isinstance(applied.get(key), int):
                pools[f"{framework}.{key}"] = applied[key]
    library = result.output.get("threads")
    if isinstance(library, Mapping):
        pools.update({str(k): v for k, v in library.items() if isinstance(v, int) and not isinstance(v, bool)})
    return pools


def largest_pool(pools: Mapping[str, int]) -> int | None:
    """The threads the step ran at most in one pool the plan judges (inter-op pools aside); ``None``: none seen."""
    judged = [size for name, size in pools.items() if "inter" not in name]  # inter-op: its own small allowance
    return max(judged) if judged else None


def usage(step: Step, result: StepResult | None) -> Usage:
    """The allowance of ``step`` next to what ``result`` observed (nothing observed when it has no result)."""
    pools = thread_pools(result) if result else {}
    used = largest_pool(pools)
    fit: Any = (result.output.get("fit") if result else None) or {}
    gpu_peak = fit.get("cuda_peak_mb") if isinstance(fit, Mapping) else None
    return Usage(
        step_id=step.id, family=step.family, status=result.status if result else "not run",
        detail=result.detail if result else "", pools=pools, threads_allowed=step.resources.threads,
        threads_used=used, oversubscribed=used is not None and used > step.resources.threads,
        os_threads=result.threads_seen if result else None, peak_rss_mb=result.peak_rss_mb if result else None,
        memory_cap_mb=step.limits.memory_cap_mb, wall_s=result.wall_s if result else None,
        timeout_s=step.limits.timeout_s, cpu_s=result.cpu_s if result else None,
        gpu_peak_mb=gpu_peak if isinstance(gpu_peak, (int, float)) else None, vram_cap_mb=step.limits.vram_cap_mb,
        device=step.resources.device, gpus=step.resources.gpus)
