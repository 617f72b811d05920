"""Trainers for the executor's tests: each one a way for a step to end (or to show what it saw).

They are user entrypoints (``tests.runtime.trainers:ok``) run in real child processes; a test's plan puts
the repository root on the children's ``PYTHONPATH`` through the project's ``env:`` section.
"""

from __future__ import annotations

import os
import time
from typing import Any

from tkplan.runtime import StepContext

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TKPLAN_SEED", "CUDA_VISIBLE_DEVICES")


def ok(ctx: StepContext) -> dict[str, Any]:
    """Write a model file and return metrics."""
    (ctx.out_dir / "model.txt").write_text(f"model of {ctx.step.id}\n")
    return {"metrics": {"score": 1.0, "seed": ctx.step.seed}, "model": "model.txt"}


def raise_error(ctx: StepContext) -> dict[str, Any]:
    raise ValueError(f"bad input in {ctx.step.id}")


def sleep_forever(ctx: StepContext) -> dict[str, Any]:
    time.sleep(3600)
    return {"metrics": {}}


def write_half_then_sleep(ctx: StepContext) -> dict[str, Any]:
    """Write ``notes.txt``, then start an atomic write of ``model.bin`` and never finish it: killed like this, a
    step leaves the writer's temporary file behind. Once that file exists, ``run_dir/release`` does too (so a
    `count_when_released` step ends while this one is half-way through its write)."""
    from tkplan._io import write_bytes_atomic

    (ctx.out_dir / "notes.txt").write_text("complete\n")

    def chunks():
        yield b"first half"
        (ctx.run_dir / "release").touch()
        time.sleep(3600)
        yield b"second half"

    write_bytes_atomic(ctx.out_dir / "model.bin", chunks())
    return {"metrics": {}}


def allocate(ctx: StepContext) -> dict[str, Any]:
    """Grow to ``params.allocate_mb`` in touched 50 MB chunks, then wait to be killed."""
    chunks = []
    for _ in range(int(ctx.step.params["allocate_mb"]) // 50):
        chunks.append(b"\x01" * (50 * 2**20))
        time.sleep(0.02)
    time.sleep(3600)
    return {"metrics": {"chunks": len(chunks)}}


def segfault(ctx: StepContext) -> dict[str, Any]:
    import ctypes

    ctypes.string_at(0)
    return {"metrics": {}}


def exit3(ctx: StepContext) -> dict[str, Any]:
    os._exit(3)


def report_threads(ctx: StepContext) -> dict[str, Any]:
    """Load a BLAS (numpy) and an OpenMP runtime, and report the pools and variables seen from inside."""
    import ctypes.util

    import numpy  # noqa: F401  # loads the BLAS whose pool the step reports
    import threadpoolctl

    gomp = ctypes.util.find_library("gomp")
    if gomp:
        ctypes.CDLL(gomp)
    return {"metrics": {}, "pools": threadpoolctl.threadpool_info(),
            "env": {k: os.environ.get(k) for k in THREAD_VARS}, "pid": os.getpid(), "niceness": os.nice(0)}


def report_torch(ctx: StepContext) -> dict[str, Any]:
    import torch

    return {"metrics": {}, "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads()}


def count(ctx: StepContext) -> dict[str, Any]:
    """Sleep ``params.sleep_s``, then, as the very last thing, append the step's id to ``run_dir/counts.txt``."""
    time.sleep(float(ctx.step.params["sleep_s"]))
    _append_count(ctx)
    return {"metrics": {"slept_s": ctx.step.params["sleep_s"]}}


def _append_count(ctx: StepContext) -> None:
    fd = os.open(ctx.run_dir / "counts.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{ctx.step.id}\n".encode())
    finally:
        os.close(fd)


def count_when_released(ctx: StepContext) -> dict[str, Any]:
    """`count`, but sleeping only until ``run_dir/release`` exists (at most ``params.sleep_s``): a step that runs
    long until its test lets it end."""
    deadline = time.monotonic() + float(ctx.step.params["sleep_s"])
    while not (ctx.run_dir / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    _append_count(ctx)
    return {"metrics": {"slept_s": ctx.step.params["sleep_s"]}}


def spawn_and_sleep(ctx: StepContext) -> dict[str, Any]:
    """Leave a grandchild behind (its pid in ``out_dir/grandchild.pid``), then sleep past the timeout."""
    import subprocess
    import sys

    code = f"import time; x = b'\\x01' * ({int(ctx.step.params['grandchild_mb'])} * 2**20); time.sleep(3600)"
    grandchild = subprocess.Popen([sys.executable, "-c", code])
    (ctx.out_dir / "grandchild.pid").write_text(str(grandchild.pid))
    time.sleep(3600)
    return {"metrics": {}}


def fill_gpu(ctx: StepContext) -> dict[str, Any]:
    """Allocate ``params.allocate_mb`` on the step's GPU; report what torch saw from inside the step."""
    import torch

    getter = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    seen = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "device_count": torch.cuda.device_count(),
            "fraction": getter(0) if getter is not None else None}
    block = torch.ones(int(ctx.step.params["allocate_mb"]) * 2**20, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    seen["allocated_mb"] = torch.cuda.memory_allocated(0) / 2**20
    del block
    return {"metrics": {}, "seen": seen}


def fail_first(ctx: StepContext) -> dict[str, Any]:
    """Fail the first time the step runs in this run directory, succeed after (a flaky input fixed meanwhile)."""
    marker = ctx.run_dir / f"{ctx.step.id}.failed-once"
    if not marker.exists():
        marker.write_text("failed\n")
        raise RuntimeError(f"first attempt of {ctx.step.id} fails")
    return {"metrics": {"score": 1.0}}


def allocate_when_unwatched(ctx: StepContext) -> dict[str, Any]:
    """Wait until the executor is gone (this process re-parented), then grow to ``params.allocate_mb`` and wait."""
    parent = os.getppid()
    (ctx.out_dir / "child.pid").write_text(str(os.getpid()))
    while os.getppid() == parent:
        time.sleep(0.05)
    chunks = [b"\x01" * (50 * 2**20) for _ in range(int(ctx.step.params["allocate_mb"]) // 50)]
    time.sleep(3600)
    return {"metrics": {"chunks": len(chunks)}}


def sleep_and_tell(ctx: StepContext) -> dict[str, Any]:
    """Write this process's pid to ``out_dir/child.pid``, then sleep for good."""
    (ctx.out_dir / "child.pid").write_text(str(os.getpid()))
    time.sleep(3600)
    return {"metrics": {}}


def escape_and_return(ctx: StepContext) -> dict[str, Any]:
    """Start a descendant in a session of its own (``setsid``: out of the step's process group), then return."""
    import subprocess
    import sys

    escaped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (ctx.out_dir / "escaped.pid").write_text(str(escaped.pid))
    return {"metrics": {"escaped": escaped.pid}}


def not_a_number(ctx: StepContext) -> dict[str, Any]:
    """Metrics a constant prediction gives: an undefined correlation (NaN) and an infinite ratio."""
    metrics = {"test": {"rank_ic": float("nan"), "r2": 0.5, "ratio": float("inf")}}
    return {"metrics": metrics, "curve": [1.0, float("-inf")]}
