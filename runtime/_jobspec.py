"""The executor's half of the contract with a step's child: ``steps/<id>/step.json``.

The child must start fast, so it does not read and structure the whole plan: the executor writes, per step,
the unstructured step plus the few facts the child acts on before the trainer runs (thread limits, which
framework to set up, the VRAM cap). ``tkplan.runtime._child`` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tkplan.planner._convert import converter, thaw
from tkplan.planner._plan import Plan, Step

__all__ = ["SPEC_FORMAT", "frameworks", "job_spec", "plan_facts", "thread_limits"]

SPEC_FORMAT = "tkplan.step/1"  # tkplan: ignore[constant]  the step file format
def thread_limits(step: Step) -> dict[str, int]:
    """The threadpoolctl limits of ``step``: its plan's OpenMP and BLAS pool sizes (``resources.pools``)."""
    pools = step.resources.pools
    return {"openmp": pools.openmp, "blas": pools.blas}


def frameworks(step: Step) -> list[str]:
    """The network framework the plan gave the step (``["torch"]``, ``["tf"]``), or ``[]`` for other families."""
    return [step.resources.backend] if step.resources.backend else []


def plan_facts(plan: Plan) -> dict[str, Any]:
    """The part of every step's spec that is the same for the whole plan; the executor computes it once per run.

    Keys: ``format``, ``plan_hash``, ``config``, ``hardware``, ``tf_allow_growth``.
    """
    config: Mapping[str, Any] = plan.config
    return {
        "format": SPEC_FORMAT,
        "plan_hash": plan.plan_hash,
        "config": thaw(config),
        "hardware": converter.unstructure(plan.hardware),
        "tf_allow_growth": bool(config["gpu"]["tf_allow_growth"]),
    }


def job_spec(plan: Plan, step: Step, run_dir: Path, out_dir: Path,
             facts: Mapping[str, Any] | None = None, trainer: str | None = None) -> dict[str, Any]:
    """What the child of ``step`` reads: JSON-ready, self-contained.

    Keys: ``format``, ``plan_hash``, ``step`` (unstructured), ``config``, ``hardware``, ``run_dir``,
    ``out_dir``, ``entrypoint`` (the step's, or ``trainer``), ``env`` (the step's environment,
    which an in-process worker applies itself), ``thread_limits``, ``pools`` (the step's typed thread limits,
    unstructured: torch's and TensorFlow's pools among them), ``frameworks``, ``device``, ``vram_cap_mb``,
    ``tf_allow_growth``.

    Args:
        facts: `plan_facts` of ``plan``, when the caller keeps them for the run (computed here otherwise).
        trainer: the trainer of a step whose family names no entrypoint (`Trainers.run_step`).
    """
    return {
        **(facts if facts is not None else plan_facts(plan)),
        "step": converter.unstructure(step),
        "run_dir": str(run_dir),
        "out_dir": str(out_dir),
        "entrypoint": step.entrypoint or trainer,
        "env": dict(step.env),
        "thread_limits": thread_limits(step),
        "frameworks": frameworks(step),
        "pools": converter.unstructure(step.resources.pools),
        "device": step.resources.device,
        "vram_cap_mb": step.limits.vram_cap_mb,
    }
