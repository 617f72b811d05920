"""The CPU families' campaign run four ways in one go: tkplan's plans against the two usual ways.

Usage: ``python tools/bench/campaign.py [--symbols N] [--timestamps N] [--features N] [--families a,b,...]
[--same-wait-policy] [--rounds N] [key=value ...]`` (overrides as in ``tkplan compile``)

  (a) ``tkplan run`` of the compiled plan (`execute`): threads, slots and order as the planner chose them;
  (b) every step at once, each with the libraries' default of all cores (oversubscribed);
  (c) one step after another with ``cpu_count - 1`` threads each (the seed pipeline's way);
  (d) ``tkplan run`` of the plan compiled again with the history of (a): the same campaign, planned with what
      its first run observed (expected costs, thread split, order, memory caps), run right after (a);
      ``--rounds N`` runs (a) and (d) N times each, turn about (a, d, d, a, a, d, …, so that a load that rises
      or falls weighs on both alike; only the first (a) records history) and compares their medians.

Every way does the same work: each step is `run_step` of the same plan step (same data, hyperparameters and
seed) in its own process; only the thread counts and the schedule differ. The children of (b) and (c) get
each step's planned environment with the thread-count variables removed (b: library defaults) or set to
``cpu_count - 1`` (c), and without ``OMP_WAIT_POLICY`` — the libraries' default wait policy, as the seed
pipeline ran — unless ``--same-wait-policy`` gives them the plan's too (then the plan's gain is its threads
and schedule alone). (a) prepares its own data inside its time; (b) and (c) share data prepared before
timing, so the comparison leans against tkplan by that preparation.

It prints each makespan, the ratios, and the lower bound max(total single-thread CPU seconds / usable CPUs,
the longest step at full threads). The single-thread CPU seconds are measured by running each step alone
with 1 thread; "the longest step at full threads" is the longest wall time of any step run alone with all
usable CPUs — or with one thread, where that was faster, so that the bound stays a bound (steps are timed
so, longest single-thread first, until no remaining step's single-thread wall time could exceed the longest
found). Targets: (a) ≤ 0.85 × the better of (b) and (c), (a) ≤ 1.25 × the lower bound, (d) ≤ 1.05 × the lower
bound and (d) ≤ (a); the prediction error of (d)'s expected makespan is printed too. The load average is printed
before and after: figures from a busy machine are not figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tkplan.planner import POOL_VARIABLES

CPU_FAMILIES = "lightgbm,quantile_lightgbm,xgboost,ngboost,ensemble,gmm_regime,change_point,ftrl_proximal,reward_based"
THREAD_VARS = tuple(name for pool in ("openmp", "blas", "numexpr") for name in POOL_VARIABLES[pool])
WAIT_POLICY = "OMP_WAIT_POLICY"


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


def child_env(planned: Mapping[str, str], threads: int | None, wait_policy: bool) -> dict[str, str]:
    """This environment plus the step's planned one, thread counts set to ``threads`` (``None``: removed).

    ``OMP_WAIT_POLICY`` is kept only when ``wait_policy`` is true.
    """
    env = {**os.environ, **planned}
    for name in THREAD_VARS:
        env.pop(name, None)
    if not wait_policy:
        env.pop(WAIT_POLICY, None)
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARS})
    return env


class Launcher:
    """Starts the child of one step with a thread count, in the way's environment."""

    def __init__(self, plan: object, plan_file: Path, run_dir: Path, wait_policy: bool) -> None:
        self.plan, self.plan_file, self.run_dir, self.wait_policy = plan, plan_file, run_dir, wait_policy

    def start(self, step_id: str, threads: int, env_threads: int | None) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "tkplan.tools.bench.campaign", "--child", str(self.plan_file),
               str(self.run_dir), step_id, str(threads)]
        planned = {str(k): str(v) for k, v in self.plan.step(step_id).env.items()}  # type: ignore[attr-defined]
        return subprocess.Popen(cmd, env=child_env(planned, env_threads, self.wait_policy))

    def alone(self, step_id: str, threads: int) -> tuple[float, float]:
        """Run ``step_id`` alone with ``threads`` threads: (wall seconds, CPU seconds of the child)."""
        before, t0 = children_cpu(), time.perf_counter()
        wait_all([self.start(step_id, threads, threads)])
        return time.perf_counter() - t0, children_cpu() - before


def wait_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.wait() != 0:
            sys.exit(f"a step failed (exit {proc.returncode})")


def children_cpu() -> float:
    """User + system CPU seconds of every child waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=CPU_FAMILIES)
    parser.add_argument("--symbols", type=int)
    parser.add_argument("--timestamps", type=int)
    parser.add_argument("--features", type=int)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run (a) and (d) this many times each, in the order a, d, d, a, a, d, ...; medians")
    parser.add_argument("--same-wait-policy", action="store_true",
                        help="give (b) and (c) the plan's OMP_WAIT_POLICY too")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="compile overrides, as in tkplan compile")
    parser.add_argument("--child", nargs=4, metavar=("PLAN", "RUN_DIR", "STEP", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        plan, run_dir, step_id, threads = args.child
        run_one(Path(plan), Path(run_dir), step_id, int(threads))
        return

    import tkplan
    from tkplan import execute
    from tkplan.families import prepare
    from tkplan.planner import CompileRequest, compile_plan, forecast, hardware_fingerprint, plan_to_json, probe
    from tkplan.runtime import read_history

    words = [f"campaign.families=[{args.families}]"]
    words += [f"data.synthetic.{k}={v}" for k, v in
              (("symbols", args.symbols), ("timestamps", args.timestamps), ("features", args.features)) if v]
    words += args.overrides
    hardware = probe()
    request = CompileRequest(words=tuple(words), env={}, cwd=Path.cwd(), hermetic=True)
    plan = compile_plan(request, hardware, "probe", tkplan.__version__)
    cpus = hardware.cpus_usable
    seed_threads = max(1, (os.cpu_count() or 2) - 1)
    steps = list(plan.schedule.order)
    print(f"load average before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plan_file = root / "plan.json"
        plan_file.write_text(plan_to_json(plan))
        shared = root / "shared"
        t0 = time.perf_counter()
        prepare(plan.config, shared)  # once, before (b) and (c); (a) prepares its own, inside its time
        prep = time.perf_counter() - t0
        launcher = Launcher(plan, plan_file, shared, args.same_wait_policy)
        print(f"{len(steps)} steps of {args.families} on {cpus} usable CPUs; preparing the data takes {prep:.1f} s")
        print(f"(b), (c) children: the planned environment, thread counts as below, OMP_WAIT_POLICY "
              f"{'as planned' if args.same_wait_policy else 'unset (library default)'}")

        store = root / "history.sqlite"
        start = time.perf_counter()
        summary = execute(plan, root / "a", history=store)
        runs_a = [time.perf_counter() - start]
        if not summary.ok:
            sys.exit(f"(a) had steps that did not end ok: {summary.counts}")
        planned = ", ".join(f"{r.step_id}={r.allowed.threads}" for r in summary.results)
        print(f"(a) tkplan plan, {plan.schedule.max_parallel} slot(s), its data preparation included: "
              f"{runs_a[0]:.1f} s\n    threads: {planned}")

        learned = compile_plan(request, hardware, "probe", tkplan.__version__,
                               history=read_history(store, hardware_fingerprint(hardware)))
        expected = forecast(learned)
        runs_d: list[float] = []
        order = ["d" if (i % 4) in (0, 1) else "a" for i in range(2 * args.rounds - 1)]  # d, d, a, a, d, ...
        for i, way in enumerate(order):
            start = time.perf_counter()
            summary = execute(learned if way == "d" else plan, root / f"{way}{i}")  # (d)'s history stays (a)'s
            (runs_d if way == "d" else runs_a).append(time.perf_counter() - start)
            if not summary.ok:
                sys.exit(f"({way}) had steps that did not end ok: {summary.counts}")
            if way == "d" and len(runs_d) == 1:
                planned = ", ".join(f"{r.step_id}={r.allowed.threads}" for r in summary.results)
        a, d = statistics.median(runs_a), statistics.median(runs_d)
        print(f"(d) tkplan plan with the history of (a), {learned.schedule.max_parallel} slot(s): {d:.1f} s "
              f"(expected {expected.makespan:.1f} s, bound expected {expected.lower_bound:.1f} s)\n"
              f"    order: {', '.join(learned.schedule.order)}\n    threads: {planned}")
        if args.rounds > 1:
            print(f"    rounds (a, d, d, a, ...): (a) {', '.join(f'{w:.1f}' for w in runs_a)} s; "
                  f"(d) {', '.join(f'{w:.1f}' for w in runs_d)} s; medians compared")

        start = time.perf_counter()
        wait_all([launcher.start(s, cpus, None) for s in steps])
        b = time.perf_counter() - start
        print(f"(b) all at once, library-default threads ({cpus} each): {b:.1f} s")

        single_wall: dict[str, float] = {}
        single_cpu: dict[str, float] = {}
        start = time.perf_counter()
        for step_id in steps:
            wall, cpu = launcher.alone(step_id, seed_threads)
            if seed_threads == 1:
                single_wall[step_id], single_cpu[step_id] = wall, cpu
        c = time.perf_counter() - start
        print(f"(c) one after another, cpu_count - 1 = {seed_threads} thread(s) each: {c:.1f} s")

        if seed_threads != 1:
            for step_id in steps:
                single_wall[step_id], single_cpu[step_id] = launcher.alone(step_id, 1)
        full: dict[str, float] = {}
        best: dict[str, float] = {}  # a step's shortest time alone: with all CPUs, or with one if that was faster
        for step_id in sorted(steps, key=single_wall.__getitem__, reverse=True):
            if best and single_wall[step_id] <= max(best.values()):
                break  # its shortest time alone is at most its single-thread wall time: it cannot be the longest
            full[step_id] = launcher.alone(step_id, cpus)[0]
            best[step_id] = min(full[step_id], single_wall[step_id])
    longest = max(best, key=best.__getitem__)
    total_cpu = sum(single_cpu.values())
    bound = max(total_cpu / cpus, best[longest])
    better = min(b, c)
    print(f"\nlower bound: max({total_cpu:.1f} single-thread CPU s / {cpus} CPUs, longest step alone at {cpus} "
          f"threads: {longest} {full[longest]:.1f} s, {single_wall[longest]:.1f} s with 1) = {bound:.1f} s")
    error = (expected.makespan - d) / d
    print(f"makespans: (a) {a:.1f} s   (b) {b:.1f} s   (c) {c:.1f} s   (d) {d:.1f} s")
    print(f"(a) / better of (b),(c) = {a / better:.2f}  (target ≤ 0.85)")
    print(f"(a) / lower bound       = {a / bound:.2f}  (target ≤ 1.25)")
    print(f"(d) / lower bound       = {d / bound:.2f}  (target ≤ 1.05)")
    print(f"(d) / (a)               = {d / a:.2f}  (target ≤ 1)")
    print(f"(d) expected {expected.makespan:.1f} s, actual {d:.1f} s: prediction error {error:+.1%}")
    print(f"load average after: {load()}")
    print(json.dumps({"a": a, "b": b, "c": c, "d": d, "d_expected": expected.makespan, "lower_bound": bound,
                      "cpus": cpus,
                      "same_wait_policy": args.same_wait_policy, "single_thread_cpu_s": single_cpu,
                      "single_thread_wall_s": single_wall, "full_threads_wall_s": full}))


if __name__ == "__main__":
    main()
