"""Plans for the family tests: the shipped profiles compiled for a fixed 4-CPU machine, small data."""

from __future__ import annotations

from pathlib import Path

from tkplan.planner import CompileRequest, HardwareSpec, compile_plan
from tkplan.planner._plan import Plan, Step
from tkplan.runtime._context import StepContext

MACHINE = HardwareSpec(
    cpus_usable=4, cpus_logical=4, cores_physical=4, memory_mb=16384, memory_total_mb=16384, gpus=(),
    gpu_driver=None, mps=False, platform="linux", machine="x86_64", cgroup=None)
"""A fixed machine, so the planned thread counts (4 for most families alone in a plan) do not depend on
the box the tests run on."""

SMALL_PANEL = ("data.synthetic.symbols=12", "data.synthetic.timestamps=300", "data.synthetic.features=12")


def compile_small(tmp_path: Path, *words: str) -> Plan:
    """Compile the shipped profiles for `MACHINE` with a small synthetic panel and ``words`` on top."""
    request = CompileRequest(words=(*SMALL_PANEL, *words), cwd=tmp_path, env={}, hermetic=True)
    return compile_plan(request, MACHINE, "spec", "test")


def context(plan: Plan, run_dir: Path, step: Step | None = None) -> StepContext:
    """The context the executor would give ``step`` (the plan's first by default)."""
    step = step or plan.steps[0]
    return StepContext(step=step, config=plan.config, hardware=plan.hardware, run_dir=run_dir,
                       out_dir=run_dir / "steps" / step.id)

