"""The CPU families' campaign run three ways in one go: tkplan's plan against the two usual ways.

Usage: ``python tools/bench/campaign.py [--symbols N] [--timestamps N] [--features N] [--families a,b,...]``

  (a) ``tkplan run`` of the compiled plan: threads and slots as the planner chose them;
  (b) every step at once, each with the libraries' default of all cores (oversubscribed);
  (c) one step after another with ``cpu_count - 1`` threads each (the seed pipeline's way).

It prints each makespan, the ratios, and the lower bound max(total single-thread CPU seconds / usable
CPUs, the longest step at full threads). Targets: (a) ≤ 0.85 × the better of (b) and (c), and (a) ≤ 1.25 ×
the lower bound. The data is prepared once, before any timing, and shared by every variant.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CPU_FAMILIES = "lightgbm,quantile_lightgbm,xgboost,ngboost,ensemble,gmm_regime,change_point,ftrl_proximal,reward_based"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def run_one(plan_file: Path, run_dir: Path, step_id: str, threads: int) -> None:
    """Child: train one step of the plan with ``threads`` threads (library and env), outside tkplan's executor."""
    import attrs

    from tkplan.families import run_step
    from tkplan.planner import plan_from_json
    from tkplan.runtime import StepContext

    plan = plan_from_json(plan_file.read_text(), str(plan_file))
    step = plan.step(step_id)
    step = attrs.evolve(step, resources=attrs.evolve(step.resources, threads=threads))
    ctx = StepContext(step=step, config=plan.config, hardware=plan.hardware, run_dir=run_dir,
                      out_dir=run_dir / "steps" / f"{step_id}.{threads}t")
    run_step(ctx)


def child_env(threads: int | None) -> dict[str, str]:
    """This environment with the thread variables set to ``threads`` (``None``: unset, library defaults)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARS})
    return env


def launch(plan_file: Path, run_dir: Path, step_id: str, threads: int, env_threads: int | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tkplan.tools.bench.campaign", "--child", str(plan_file), str(run_dir), step_id,
           str(threads)]
    return subprocess.Popen(cmd, env=child_env(env_threads))


def wait_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.wait() != 0:
            sys.exit(f"a step failed (exit {proc.returncode})")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=CPU_FAMILIES)
    parser.add_argument("--symbols", type=int)
    parser.add_argument("--timestamps", type=int)
    parser.add_argument("--features", type=int)
    parser.add_argument("--child", nargs=4, metavar=("PLAN", "RUN_DIR", "STEP", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        plan, run_dir, step_id, threads = args.child
        run_one(Path(plan), Path(run_dir), step_id, int(threads))
        return

    import tkplan
    from tkplan.families import prepare
    from tkplan.planner import CompileRequest, compile_plan, plan_to_json, probe
    from tkplan.runtime import execute

    words = [f"campaign.families=[{args.families}]"]
    words += [f"data.synthetic.{k}={v}" for k, v in
              (("symbols", args.symbols), ("timestamps", args.timestamps), ("features", args.features)) if v]
    hardware = probe()
    plan = compile_plan(CompileRequest(words=tuple(words), env={}, cwd=Path.cwd(), hermetic=True), hardware,
                        "probe", tkplan.__version__)
    budget, cpus = plan.schedule.thread_budget, hardware.cpus_usable
    seed_threads = max(1, (os.cpu_count() or 2) - 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plan_file = root / "plan.json"
        plan_file.write_text(plan_to_json(plan))
        shared = root / "shared"
        t0 = time.perf_counter()
        prepare(plan.config, shared)  # once, before (b) and (c); (a) prepares its own, inside its time
        prep = time.perf_counter() - t0
        steps = list(plan.schedule.order)
        print(f"{len(steps)} steps of {args.families} on {cpus} usable CPUs; preparing the data takes {prep:.1f} s")

        run_a = root / "a"
        start = time.perf_counter()
        summary = execute(plan, run_a)
        a = time.perf_counter() - start
        if not summary.ok:
            sys.exit(f"(a) had steps that did not end ok: {summary.counts}")
        print(f"(a) tkplan plan, its data preparation included: {a:.1f} s  (threads: "
              + ", ".join(f"{r.step_id.split('.')[0]}={r.allowed.threads}" for r in summary.results[:4]) + ", ...)")

        start = time.perf_counter()
        wait_all([launch(plan_file, shared, s, cpus, None) for s in steps])
        b = time.perf_counter() - start
        print(f"(b) all at once, library-default threads ({cpus} each): {b:.1f} s")

        single: dict[str, float] = {}
        start = time.perf_counter()
        for step_id in steps:
            before, t0 = children_cpu(), time.perf_counter()
            wait_all([launch(plan_file, shared, step_id, seed_threads, seed_threads)])
            single[step_id] = children_cpu() - before if seed_threads == 1 else time.perf_counter() - t0
        c = time.perf_counter() - start
        print(f"(c) one after another, cpu_count - 1 = {seed_threads} thread(s) each: {c:.1f} s")

        if seed_threads != 1:
            for step_id in steps:
                before = children_cpu()
                wait_all([launch(plan_file, shared, step_id, 1, 1)])
                single[step_id] = children_cpu() - before
        longest = max(single, key=single.__getitem__)
        t0 = time.perf_counter()
        wait_all([launch(plan_file, shared, longest, cpus, cpus)])
        longest_full = time.perf_counter() - t0
    bound = max(sum(single.values()) / cpus, longest_full)
    better = min(b, c)
    print(f"\nlower bound: max({sum(single.values()):.1f} single-thread CPU s / {cpus} CPUs, "
          f"longest step {longest} at {cpus} threads {longest_full:.1f} s) = {bound:.1f} s")
    print(f"makespans: (a) {a:.1f} s   (b) {b:.1f} s   (c) {c:.1f} s")
    print(f"(a) / better of (b),(c) = {a / better:.2f}  (target ≤ 0.85)")
    print(f"(a) / lower bound       = {a / bound:.2f}  (target ≤ 1.25)")
    print(json.dumps({"a": a, "b": b, "c": c, "lower_bound": bound, "single_thread_cpu_s": single}))


if __name__ == "__main__":
    main()
