"""The child side of a step: set the limits up, call the trainer, report. Runs as its own interpreter.

``python -m tkplan.runtime._child RUN_DIR STEP_ID`` runs one step in a fresh interpreter. The executor
started it with the step's environment already in place, so every library loaded here reads its thread
variables (``OMP_NUM_THREADS``, the BLAS variables, ``CUDA_VISIBLE_DEVICES``...) at load. Then, in order:

1. read ``steps/<id>/step.json`` (written by ``tkplan.runtime._jobspec``) and start the step's own watchdog
   (``tkplan.runtime._guard``, with the spec's ``watch``: timeout, memory cap, period), which keeps the
   limits should the executor die;
2. enter ``threadpoolctl.threadpool_limits`` with the step's OpenMP and BLAS pool sizes;
3. when the step trains with torch or TensorFlow: set their intra-/inter-op threads (the plan's
   ``resources.pools``: set here only, the adapters read them) and, for a CUDA step
   with a VRAM cap, the cap (torch: ``set_per_process_memory_fraction``; TF: a logical device with that
   ``memory_limit``, or memory growth without a cap) — only that framework is imported;
4. import and call the trainer, the step file's ``entrypoint`` (the step's own, or the default the executor was
   given, `Trainers.run_step`), with a `StepContext`;
5. write ``outcome.json`` atomically: ``status`` (``ok`` / ``failed``), ``metrics``, ``output``, ``error``
   (type, message, traceback), ``applied`` (the settings above) and ``usage`` (CPU time, max RSS, threads,
   ``threadpoolctl.threadpool_info()`` at the end); exit 0 when ok, 1 when the trainer raised.

``python -m tkplan.runtime._child --worker RUN_DIR NOTIFY_FD`` is the *in-process* worker: one long-lived
interpreter that runs every ``inproc`` step of a run, one after the other, without a fresh interpreter per
step. It reads step ids from stdin; for each it applies the step's environment to ``os.environ`` (a library
first loaded during the step reads it; ``PYTHONPATH`` entries go on ``sys.path``), redirects stdout/stderr to
the step's logs, runs steps 2-5 above (thread limits through threadpoolctl, restored afterwards), restores
the environment, and writes ``done <id>`` to ``NOTIFY_FD``. It exits at the end of its input. The executor
watches it like any child.

Imports are kept to the minimum, so that a step's start costs little beyond the interpreter's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

__all__ = ["main", "run_spec"]


def main(argv: list[str]) -> int:
    """Entry point: one step, or the in-process worker."""
    _project_last()
    if argv[:1] == ["--worker"]:
        _serve(argv[1], int(argv[2]))
        return 0
    run_dir, step_id = argv
    step_dir = os.path.join(run_dir, "steps", step_id)
    spec = _read_spec(step_dir)
    with _guard(spec, step_dir):
        outcome = run_spec(spec)
    _write_json_atomic(os.path.join(step_dir, "outcome.json"), outcome)
    return 0 if outcome["status"] == "ok" else 1


def _project_last() -> None:
    """Put the working directory at the end of ``sys.path``: after tkplan and its dependencies.

    The child starts with ``python -P``, so a module of the project named like a dependency
    (``threadpoolctl.py``) cannot shadow it; the project's own trainer modules still import.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)


def _guard(spec: dict[str, Any], step_dir: str) -> Any:
    """The step's own watchdog (``tkplan.runtime._guard``), or nothing for a spec without limits to watch."""

    watch = spec.get("watch")
    if not watch:
        return contextlib.nullcontext()
    from tkplan.runtime._guard import Guard

    return Guard(spec["step"]["id"], watch, lambda outcome: _write_json_atomic(
        os.path.join(step_dir, "outcome.json"), outcome))


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the step ``spec`` describes in this process; return its outcome (never raises for the trainer)."""
    import resource

    start = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_SELF)
    applied: dict[str, Any] = {"thread_limits": spec["thread_limits"]}
    outcome: dict[str, Any] = {"step": spec["step"]["id"], "status": "ok", "metrics": {}, "output": {},
                               "error": None, "applied": applied}
    pools: list[dict[str, Any]] = []
    try:
        import threadpoolctl

        with threadpoolctl.threadpool_limits(limits=spec["thread_limits"]):
            try:
                for framework in spec["frameworks"]:
                    applied[framework] = _SETUP[framework](spec)
                trainer = _load(spec["entrypoint"])
                result = trainer(_context(spec))
            finally:
                pools = threadpoolctl.threadpool_info()
        metrics, output = _split_result(spec["entrypoint"], result)
        (outcome["metrics"], in_metrics), (outcome["output"], in_output) = _finite(metrics, "metrics"), _finite(output)
        if in_metrics or in_output:
            outcome["note"] = "not a finite number, written as null: " + ", ".join(in_metrics + in_output)
    except BaseException as exc:  # the trainer's failure is the step's result, whatever it is
        if isinstance(exc, KeyboardInterrupt):
            raise
        outcome.update(status="failed", metrics={}, output={}, error=_error(exc))
    after = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome["usage"] = {
        "wall_s": round(time.monotonic() - start, 6),
        "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                       + children.ru_utime + children.ru_stime, 6),
        "max_rss_mb": round(after.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024), 1),
        "threads": _thread_count(),
        "pools": pools,
        "gpu_peak_mb": _gpu_peak_mb(),
    }
    return outcome


def _gpu_peak_mb() -> float | None:
    """The most GPU memory the step's framework held, if it used a GPU: torch's peak reserved, TF's peak in use."""
    torch = sys.modules.get("torch")
    with contextlib.suppress(Exception):  # a framework without a GPU, or one that cannot say: not measured
        if torch is not None and torch.cuda.is_initialized():
            return round(torch.cuda.max_memory_reserved() / 2**20, 1)
    tf = sys.modules.get("tensorflow")
    with contextlib.suppress(Exception):
        if tf is not None and tf.config.list_logical_devices("GPU"):
            return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
    return None


def _read_spec(step_dir: str) -> dict[str, Any]:
    with open(os.path.join(step_dir, "step.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _context(spec: dict[str, Any]) -> Any:
    """The trainer's `StepContext`: only this step is structured, not the plan."""
    from pathlib import Path

    from tkplan.planner._convert import converter
    from tkplan.planner._hardware import HardwareSpec
    from tkplan.planner._plan import Step
    from tkplan.runtime._context import StepContext

    return StepContext(step=converter.structure(spec["step"], Step), config=spec["config"],
                       hardware=converter.structure(spec["hardware"], HardwareSpec),
                       run_dir=Path(spec["run_dir"]), out_dir=Path(spec["out_dir"]))


def _load(entrypoint: str) -> Any:
    """Import ``package.module:function``."""
    import importlib

    module_name, _, attr = entrypoint.partition(":")
    if not module_name or not attr:
        raise ImportError(f"entrypoint {entrypoint!r} is not 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import the trainer {entrypoint!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"cannot import the trainer {entrypoint!r}: module {module_name!r} has no {attr!r}") from None


def _split_result(entrypoint: str, result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from collections.abc import Mapping

    if not isinstance(result, Mapping) or not isinstance(result.get("metrics"), Mapping):
        raise TypeError(f"the trainer {entrypoint!r} returned {type(result).__name__}; expected a mapping with "
                        "a 'metrics' mapping")
    return dict(result["metrics"]), {k: v for k, v in result.items() if k != "metrics"}


def _error(exc: BaseException) -> dict[str, Any]:
    import traceback

    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return {"type": type(exc).__name__, "summary": summary,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def _thread_count() -> int:
    """Threads of this process now (the OS's count, native threads included)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


# -- frameworks ------------------------------------------------------------------------------------------


def _setup_torch(spec: dict[str, Any]) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return {"available": False}
    import torch

    pools = spec["pools"]
    torch.set_num_threads(pools["torch_intra"])
    try:
        torch.set_num_interop_threads(pools["torch_inter"])
    except RuntimeError:  # settable once per process: an in-process worker keeps the first step's value
        pass
    applied: dict[str, Any] = {"num_threads": torch.get_num_threads(),
                               "num_interop_threads": torch.get_num_interop_threads()}
    if spec["device"] == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("the step is planned on a CUDA GPU but torch sees none "
                               f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})")
        cap = spec["vram_cap_mb"]
        if cap:
            fractions = []
            for index in range(torch.cuda.device_count()):
                total = torch.cuda.get_device_properties(index).total_memory
                fraction = min(1.0, cap * 2**20 / total)
                torch.cuda.set_per_process_memory_fraction(fraction, index)
                fractions.append(round(fraction, 6))
            applied["vram_cap_mb"] = cap
            applied["memory_fraction"] = fractions
    return applied


def _setup_tf(spec: dict[str, Any]) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return {"available": False}
    import tensorflow as tf

    applied: dict[str, Any] = {}
    try:
        tf.config.threading.set_intra_op_parallelism_threads(spec["pools"]["tf_intra"])
        tf.config.threading.set_inter_op_parallelism_threads(spec["pools"]["tf_inter"])
    except RuntimeError:  # TF is already initialised in this process (an in-process worker)
        pass
    applied["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    applied["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
    if spec["device"] == "cuda":
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            raise RuntimeError("the step is planned on a CUDA GPU but TensorFlow sees none")
        cap = spec["vram_cap_mb"]
        for gpu in gpus:
            if cap:
                limit = tf.config.LogicalDeviceConfiguration(memory_limit=cap)
                tf.config.set_logical_device_configuration(gpu, [limit])
            elif spec["tf_allow_growth"]:
                tf.config.experimental.set_memory_growth(gpu, True)  # tkplan: ignore[process_setting]  the plan decides
        applied["vram_cap_mb"] = cap
        applied["memory_growth"] = bool(not cap and spec["tf_allow_growth"])
    return applied


_SETUP = {"torch": _setup_torch, "tf": _setup_tf}


# -- files -----------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """Numpy scalars and arrays as plain numbers and lists; anything else is not JSON-ready."""
    for method in ("item", "tolist"):
        if hasattr(value, method):
            return getattr(value, method)()
    raise TypeError(f"the trainer returned a {type(value).__name__}, which is not JSON-ready")


def _finite(data: Any, path: str = "") -> tuple[Any, list[str]]:
    """``data`` made JSON-ready (numpy values as numbers), NaN and infinities as ``null``; where they were.

    Raises:
        TypeError: a value is not JSON-ready.
    """
    from tkplan.runtime._finite import finite

    return finite(json.loads(json.dumps(data, default=_json_default)), path)


def _write_json_atomic(path: str, data: Any) -> None:
    from pathlib import Path

    from tkplan._io import write_text_atomic

    write_text_atomic(Path(path), json.dumps(data, default=_json_default, sort_keys=True), parents=False)


# -- the in-process worker ---------------------------------------------------------------------------------

_STEP_MARK = "TKPLAN_STEP_ID"  # tkplan: ignore[constant]  tkplan.runtime._ours.STEP_ID, without importing it


def _serve(run_dir: str, notify_fd: int) -> None:
    """Run the steps named on stdin, one at a time, in this process."""
    for line in sys.stdin:
        step_id = line.strip()
        if not step_id:
            continue
        step_dir = os.path.join(run_dir, "steps", step_id)
        spec = _read_spec(step_dir)
        saved_env, saved_path = dict(os.environ), list(sys.path)
        os.environ.update(spec["env"])
        os.environ[_STEP_MARK] = step_id  # what the step starts carries this mark (tkplan.runtime._ours)
        _extend_path(spec["env"].get("PYTHONPATH", ""))
        saved_fds = _redirect(step_dir)
        try:
            with _guard(spec, step_dir):
                outcome = run_spec(spec)
        finally:
            _restore(saved_fds)
            os.environ.clear()
            os.environ.update(saved_env)
            sys.path[:] = saved_path
        _write_json_atomic(os.path.join(step_dir, "outcome.json"), outcome)
        os.write(notify_fd, f"done {step_id}\n".encode())


def _extend_path(pythonpath: str) -> None:
    """Do what the step's ``PYTHONPATH`` would have done at start-up: its entries before site-packages."""
    entries = [p for p in pythonpath.split(os.pathsep) if p and p not in sys.path]
    sys.path[1:1] = entries


def _redirect(step_dir: str) -> tuple[int, int]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    for fd, name in ((1, "stdout.log"), (2, "stderr.log")):
        target = os.open(os.path.join(step_dir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    return saved


def _restore(saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, copy in zip((1, 2), saved, strict=True):
        os.dup2(copy, fd)
        os.close(copy)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
