"""Sweeps, in one run: how fast ``tkplan sweep`` plans a large grid, and how long a small grid takes to train.

Usage: ``python tools/bench/sweep.py [--points N] [--baseline-rev REV | --baseline PYTHON]
[--plan-only | --makespan-only] [--profile] [--timestamps N] [--epochs N]``

Planning speed. A ``--points``-point grid (default 1,000): ``families.lightgbm.num_leaves=range(2, 2 + N/10)`` ×
ten ``families.lightgbm.learning_rate`` values over the shipped default campaign (``laptop``: nine CPU families ×
two targets), planned for this machine's probed hardware, then written as a sweep file. It is measured in a fresh
interpreter for each version of the code, one after the other on the same machine in the same run: this
checkout's, and the code before a change — ``--baseline-rev REV``: that commit of this repository, exported
with ``git archive`` into a temporary directory and imported from there by this interpreter; or
``--baseline PYTHON``: the tkplan that interpreter imports (another checkout's venv). Printed for each: wall
and CPU seconds of ``compile_sweep`` and plans per second (CPU seconds too, as the machine may be shared), the
peak resident memory of the process after planning and after writing, the sweep file's size and the time to
write it as ``tkplan sweep -o`` does, and the ratio of the two versions. ``--profile`` also prints where this
checkout's planning time goes (cProfile, by cumulative time, in a pass of its own).

Makespan. A 12-point grid over ``ci_fast`` with the families LightGBM and MLP and two targets:
``families.lightgbm.num_leaves`` × ``families.lightgbm.learning_rate`` (2 × 2) × ``families.mlp.hidden_layers``
(3 widths), trained three ways:

  (a) ``tkplan sweep … -o sweep.json`` then ``tkplan run sweep.json --out DIR``: one schedule over every point's
      steps, a step that several points share (same digest) trained once; its data preparation inside its time.
      Skipped, saying so, where ``tkplan run`` takes no sweep file;
  (b) Hydra multirun with its basic launcher: one job after another, in one process;
  (c) Hydra multirun with its joblib launcher, ``n_jobs`` = usable CPUs.

Each Hydra job runs the same training function on the same data as (a): it compiles its point's plan with
tkplan (in process) and trains each of the plan's steps with tkplan's family adapter (``run_step``), with the
libraries' default of all usable CPUs, as a training script of one's own does; (b) and (c) share data prepared
once before timing, so the comparison leans against tkplan by that preparation. Target: (a) ≤ 0.8 × the better
of (b) and (c). The load average is printed before and after: figures from a busy machine are not figures.

hydra-core and hydra-joblib-launcher are needed by (b) and (c) only: they are installed for this bench alone
(``pip install hydra-core hydra-joblib-launcher``) and are no dependency of tkplan.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

RATES = "0.01,0.02,0.03,0.05,0.07,0.1,0.12,0.15,0.2,0.3"  # tkplan: ignore[constant]  the planning grid's rates
LEAVES, RATES_12, WIDTHS = (15, 63), (0.05, 0.1), (32, 64, 128)  # tkplan: ignore[constant]  the 12-point grid
HYDRA_CONFIG = "tkplan_bench_sweep"  # tkplan: ignore[constant]  the Hydra app's config name

_PLANNING = r"""
import json, resource, sys, time
import tkplan
from tkplan.planner import CompileRequest, compile_sweep, probe, sweep_to_json

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

words, profile = json.loads(sys.argv[1]), sys.argv[2] == "1"
request = CompileRequest(words=tuple(words), env={}, hermetic=True)
hardware = probe()
rss_before = rss_mb()
if profile:
    import cProfile, pstats
    profiler = cProfile.Profile()
    profiler.enable()
wall, cpu = time.perf_counter(), time.process_time()
sweep = compile_sweep(request, hardware, "probe", tkplan.__version__)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
rss_planned = rss_mb()
import os, tempfile
from tkplan import _io, planner
write, target = time.perf_counter(), os.path.join(tempfile.mkdtemp(), "sweep.json")
if hasattr(planner, "sweep_chunks"):  # as `tkplan sweep -o` writes it
    _io.write_bytes_atomic(target, (chunk.encode() for chunk in planner.sweep_chunks(sweep)))
else:
    _io.write_text_atomic(target, sweep_to_json(sweep))
write = time.perf_counter() - write
size = os.path.getsize(target)
os.remove(target)
if profile:
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(r"tkplan", 25)
print(json.dumps({"tkplan": tkplan.__file__, "points": len(sweep.points), "plans": len(sweep.plans),
                  "steps": sum(len(sweep.plans[p.plan_hash].steps) for p in sweep.points), "wall_s": wall,
                  "cpu_s": cpu, "rss_before_mb": rss_before, "rss_planned_mb": rss_planned,
                  "rss_written_mb": rss_mb(), "file_mb": size / 1e6, "write_s": write}))
"""


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def clean_env() -> dict[str, str]:
    """This environment without tkplan's variables: every measurement compiles hermetically from the same inputs."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}


def planning(python: str, points: int, profile: bool, source: Path | None = None) -> dict[str, Any]:
    """Plan and write the ``points``-point grid in a fresh ``python`` (importing tkplan from ``source`` when
    given); its figures."""
    words = ["laptop", f"families.lightgbm.num_leaves=range(2,{2 + points // 10})",
             f"families.lightgbm.learning_rate={RATES}"]
    env = clean_env()
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:  # no checkout in the working directory to shadow the installed one
        done = subprocess.run([python, "-c", _PLANNING, json.dumps(words), "1" if profile else "0"], cwd=tmp,
                              env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        sys.exit(f"planning with {python} failed:\n{done.stderr}")
    if profile:
        print(done.stderr)
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return figures


def export_revision(rev: str, into: Path) -> Path:
    """Commit ``rev`` of this repository as an importable tree under ``into`` (``tkplan/`` links its packages)."""
    repo = Path(__file__).resolve().parents[2]
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=repo, capture_output=True)
    if archive.returncode != 0:
        sys.exit(f"--baseline-rev {rev}: git archive failed in {repo}: {archive.stderr.decode(errors='replace')}")
    root = into / "baseline"
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="tar")
    for package in ("profiles", "schema"):  # package data, which an editable install maps and a plain tree lacks
        link = root / "tkplan" / package
        if not link.exists():
            link.symlink_to(Path("..") / package)
    return root


def print_planning(name: str, f: dict[str, Any]) -> None:
    print(f"{name}: {f['tkplan']}\n"
          f"  {f['points']} points, {f['steps']} steps, {f['plans']} distinct plans\n"
          f"  compile_sweep {f['wall_s']:.2f} s wall ({f['points'] / f['wall_s']:.1f} plans/s), "
          f"{f['cpu_s']:.2f} s CPU ({f['points'] / f['cpu_s']:.1f} plans/s, {1000 * f['cpu_s'] / f['points']:.2f} ms "
          f"per point)\n"
          f"  peak RSS {f['rss_before_mb']:.0f} MB before, {f['rss_planned_mb']:.0f} MB planned, "
          f"{f['rss_written_mb']:.0f} MB after writing the file\n"
          f"  sweep file {f['file_mb']:.1f} MB, written in {f['write_s']:.2f} s")


def grid_words(timestamps: int, epochs: int) -> tuple[str, ...]:
    """The 12-point grid's fixed words: ci_fast, LightGBM and MLP, two targets, a panel of ``timestamps``."""
    return ("ci_fast", "campaign.families=[lightgbm,mlp]", "campaign.targets=[fwd_ret_5m,will_peak_5m]",
            f"data.synthetic.timestamps={timestamps}", "data.synthetic.symbols=16", f"vars.epochs={epochs}",
            "vars.batch_size=256",
            "vars.n_estimators=100", "limits.total_time_budget_h=1")


def point_words(leaves: int, rate: float, width: int) -> tuple[str, ...]:
    return (f"families.lightgbm.num_leaves={leaves}", f"families.lightgbm.learning_rate={rate}",
            f"families.mlp.hidden_layers=[{width}]")


def train_point(cfg: Any) -> None:
    """A Hydra job: compile the point's plan and train each of its steps with the family adapters, all CPUs each."""
    import attrs

    import tkplan
    from tkplan.families import run_step
    from tkplan.planner import CompileRequest, compile_plan, probe
    from tkplan.runtime import StepContext

    hydra_config = importlib.import_module("hydra.core.hydra_config").HydraConfig
    out = Path(hydra_config.get().runtime.output_dir)
    words = (*grid_words(cfg.timestamps, cfg.epochs), *point_words(cfg.num_leaves, cfg.learning_rate, cfg.width))
    plan = compile_plan(CompileRequest(words=words, env={}, hermetic=True), probe(), "probe", tkplan.__version__)
    cpus = plan.hardware.cpus_usable
    for step_id in plan.schedule.order:
        step = plan.step(step_id)
        step = attrs.evolve(step, resources=attrs.evolve(step.resources, threads=cpus))
        run_step(StepContext(step=step, config=plan.config, hardware=plan.hardware, run_dir=Path(cfg.data_dir),
                             out_dir=out / step_id))


def hydra_app(argv: list[str]) -> None:
    """Run the Hydra app (``train_point`` over a structured config) with Hydra's command line ``argv``."""
    hydra = importlib.import_module("hydra")
    store = importlib.import_module("hydra.core.config_store").ConfigStore.instance()
    store.store(name=HYDRA_CONFIG, node={"num_leaves": 31, "learning_rate": 0.1, "width": 64, "data_dir": "",
                                         "timestamps": 0, "epochs": 0})
    sys.argv = [sys.argv[0], *argv]
    hydra.main(version_base=None, config_name=HYDRA_CONFIG)(train_point)()


def makespan(timestamps: int, epochs: int) -> None:
    """The 12-point grid three ways; prints each makespan and the ratio."""
    import tkplan
    from tkplan.families import prepare
    from tkplan.planner import CompileRequest, compile_plan, probe

    base = grid_words(timestamps, epochs)
    cpus = probe().cpus_usable
    axes = (f"families.lightgbm.num_leaves={','.join(map(str, LEAVES))}",
            f"families.lightgbm.learning_rate={','.join(map(str, RATES_12))}",
            "families.mlp.hidden_layers=choice(" + ",".join(f"[{w}]" for w in WIDTHS) + ")")
    points = len(LEAVES) * len(RATES_12) * len(WIDTHS)
    print(f"\nmakespan: {points} points of {' '.join(base)} {' '.join(axes)}\non {cpus} usable CPUs; "
          f"load average before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = clean_env()
        figures: dict[str, float | None] = {}

        start = time.perf_counter()
        swept = subprocess.run([sys.executable, "-m", "tkplan.cli", "sweep", *base, *axes, "-o", "sweep.json"],
                               cwd=root, env=env, capture_output=True, text=True)
        if swept.returncode != 0:
            sys.exit(f"tkplan sweep failed:\n{swept.stdout}{swept.stderr}")
        ran = subprocess.run([sys.executable, "-m", "tkplan.cli", "run", "sweep.json", "--out", "a"], cwd=root,
                             env=env, capture_output=True, text=True)
        a = time.perf_counter() - start
        sweep = json.loads((root / "sweep.json").read_text())
        unique = len({s["digest"] for plan in sweep["plans"].values() for s in plan["steps"]})
        if ran.returncode != 0 and "not a tkplan.plan/1 plan" in ran.stdout + ran.stderr:
            figures["a"] = None
            print("(a) skipped: `tkplan run` takes no sweep file in this tree (the running half of sweeps adds it)")
        elif ran.returncode != 0:
            sys.exit(f"(a) tkplan run sweep.json failed (exit {ran.returncode}):\n{ran.stdout}{ran.stderr}")
        else:
            figures["a"] = a
            print(f"(a) tkplan sweep + tkplan run sweep.json ({unique} distinct steps of "
                  f"{sum(len(p['steps']) for p in sweep['plans'].values())}): {a:.1f} s")

        data_dir = root / "shared"
        plan = compile_plan(CompileRequest(words=(*base, *point_words(LEAVES[0], RATES_12[0], WIDTHS[0])), env={},
                                           hermetic=True), probe(), "probe", tkplan.__version__)
        prepare(plan.config, data_dir)  # once, before (b) and (c)
        overrides = [f"num_leaves={','.join(map(str, LEAVES))}", f"learning_rate={','.join(map(str, RATES_12))}",
                     f"width={','.join(map(str, WIDTHS))}", f"data_dir={data_dir}", f"timestamps={timestamps}",
                     f"epochs={epochs}"]
        for name, launcher in (("b", []), ("c", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={cpus}"])):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "tkplan.tools.bench.sweep", "--hydra-app", "-m", *overrides,
                                   *launcher, f"hydra.sweep.dir={root / name}"], cwd=root, env=env,
                                  capture_output=True, text=True)
            figures[name] = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"({name}) Hydra multirun failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
            jobs = sum(1 for _ in (root / name).glob("*/.hydra"))
            how = "basic launcher, one job after another" if name == "b" else f"joblib launcher, n_jobs={cpus}"
            print(f"({name}) Hydra multirun, {how} ({jobs} jobs × {len(plan.steps)} steps, all CPUs each): "
                  f"{figures[name]:.1f} s")
    b, c, a_time = figures["b"], figures["c"], figures["a"]
    assert b is not None and c is not None
    if a_time is not None:
        print(f"(a) / better of (b),(c) = {a_time / min(b, c):.2f}  (target ≤ 0.8)")
    print(f"load average after: {load()}")
    print(json.dumps({"makespan_s": figures, "cpus": cpus, "points": points}))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--hydra-app"]:
        hydra_app(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1000, help="planning grid size, a multiple of 10 (1000)")
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--baseline-rev", metavar="REV", help="a commit of this repository with the code before")
    baseline.add_argument("--baseline", metavar="PYTHON", help="an interpreter whose tkplan is the code before")
    parser.add_argument("--plan-only", action="store_true", help="measure planning speed only")
    parser.add_argument("--makespan-only", action="store_true", help="measure the 12-point makespan only")
    parser.add_argument("--profile", action="store_true", help="print where this checkout's planning time goes")
    parser.add_argument("--timestamps", type=int, default=300, help="panel length of the makespan grid (300)")
    parser.add_argument("--epochs", type=int, default=3, help="MLP epochs of the makespan grid (3)")
    args = parser.parse_args(argv)
    if args.points < 10 or args.points % 10:
        parser.error("--points must be a positive multiple of 10")
    if not args.makespan_only:
        print(f"planning: load average before: {load()}")
        after = planning(sys.executable, args.points, False)
        print_planning("this checkout", after)
        if args.profile:  # a pass of its own: the profiler's overhead stays out of the figures
            planning(sys.executable, args.points, True)
        if args.baseline or args.baseline_rev:
            with tempfile.TemporaryDirectory() as tmp:
                source = export_revision(args.baseline_rev, Path(tmp)) if args.baseline_rev else None
                before = planning(args.baseline or sys.executable, args.points, False, source)
            print_planning(f"baseline ({args.baseline or 'commit ' + args.baseline_rev})", before)
            print(f"  before → after: {before['points'] / before['cpu_s']:.1f} → "
                  f"{after['points'] / after['cpu_s']:.1f} plans per CPU second "
                  f"({before['cpu_s'] / after['cpu_s']:.1f}×), peak RSS "
                  f"{before['rss_written_mb']:.0f} → {after['rss_written_mb']:.0f} MB, file "
                  f"{before['file_mb']:.0f} → {after['file_mb']:.0f} MB, writing {before['write_s']:.1f} → "
                  f"{after['write_s']:.1f} s")
        print(f"planning: load average after: {load()}")
    if not args.plan_only:
        makespan(args.timestamps, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
