"""Benchmark: ``tkplan tune`` against plain Optuna and Hydra's Optuna sweeper, then a pruned MLP study.

The same search space (LightGBM's num_leaves, learning_rate, min_data_in_leaf, feature_fraction), the same
data (the built-in synthetic panel, prepared once by tkplan and handed to the other two as arrays), the same
fixed parameters (the plan's), the same metric (rank IC on the validation split, maximized), the same number
of trials and CPUs, TPE seeded alike:

(a) ``tkplan tune``: each trial a plan, as many at once as the thread budget holds, each with its share of
    the threads, pruned by the median pruner;
(b) plain Optuna, ``study.optimize(n_jobs=CPUs)``: threads under the GIL, LightGBM with its default threads;
(c) Hydra's Optuna sweeper with ``n_jobs=CPUs``: batches of trials through the basic launcher. It pins
    ``optuna<3``, so it runs in its own virtual environment: ``--hydra-python PATH`` (made by
    ``python -m venv /work/venvs/hydra-optuna && /work/venvs/hydra-optuna/bin/pip install hydra-optuna-sweeper
    lightgbm scikit-learn pandas "hydra-core==1.3.2" "omegaconf==2.3.0"``: the sweeper 1.3.0 does not run on
    hydra-core 1.4's pre-releases); without it (c) is skipped, saying so.

Each is timed as a user runs it: one process from start to end (imports included). Target: (a) ≤ 0.7 × the
faster of (b) and (c). The best values are compared with the spread of the complete trials' values of (b):
a difference within one standard deviation of them is noise.

The second study trains MLP on the same panel with the median pruner and reports how many trials were pruned
and the epochs (and their seconds) that pruning saved against running every trial's planned epochs.

    python tools/bench/tune.py [--trials 40] [--hydra-python /work/venvs/hydra-optuna/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

SPACE = {
    "families.lightgbm.num_leaves": {"int": [8, 128], "log": True},
    "families.lightgbm.learning_rate": {"float": [0.01, 0.3], "log": True},
    "families.lightgbm.min_data_in_leaf": {"int": [10, 200]},
    "families.lightgbm.feature_fraction": {"float": [0.5, 1.0]},
}
PANEL = {"symbols": 16, "timestamps": 400, "features": 32}  # the built-in panel as base.yaml sizes it
ROUNDS = {"n_estimators": 400, "early_stopping_rounds": 30}
HYDRA_VENV = Path("/work/venvs/hydra-optuna/bin/python")
TKPLAN = [sys.executable, "-c", "from tkplan.cli import run; run()"]


def profile(trials: int) -> dict[str, Any]:
    """The study's profile (JSON is YAML): LightGBM on one regression target of the panel."""
    return {
        "run": {"name": "bench_tune", "base_seed": 42},
        "campaign": {"families": ["lightgbm"], "targets": ["fwd_ret_5m"]},
        "data": {"synthetic": PANEL},
        "families": {"lightgbm": {**ROUNDS, "log_every": 10}},
        "search": SPACE,
        "tune": {"trials": trials, "sampler": {"name": "tpe", "seed": 42, "n_startup_trials": 10}},
    }


def tkplan_tune(work: Path, trials: int) -> dict[str, Any]:
    """(a): the CLI, timed from start to end."""
    (work / "study.yaml").write_text(json.dumps(profile(trials), indent=1))
    start = time.perf_counter()
    done = subprocess.run([*TKPLAN, "tune", "study.yaml", "--out", "study", "-q", "--format", "json"], cwd=work,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"tkplan tune failed:\n{done.stderr}")
    summary = json.loads(done.stdout)
    states = [t["state"] for t in summary["trials"]]
    return {"wall_s": wall, "best": summary["best"]["value"], "pruned": states.count("PRUNED"),
            "complete": states.count("COMPLETE")}


def prepared(work: Path) -> tuple[dict[str, Any], Path]:
    """The data as tkplan prepares it for the study's plan, saved as arrays; and the plan's fixed parameters."""
    import tkplan
    from tkplan.families import prepare
    from tkplan.planner import CompileRequest, compile_plan, probe

    (work / "plain").mkdir(exist_ok=True)
    (work / "plain" / "tkplan.yaml").write_text(json.dumps({k: v for k, v in profile(1).items()
                                                           if k not in ("search", "tune")}))
    plan = compile_plan(CompileRequest(cwd=work / "plain", env={}, hermetic=True), probe(), "probe",
                        tkplan.__version__)
    step = plan.steps[0]
    dataset = prepare(plan.config, work / "plain")
    parts = {s: dataset.part(s, step.target) for s in ("train", "val")}
    arrays = work / "data.npz"
    np.savez(arrays, x_train=parts["train"].x, y_train=parts["train"].y, x_val=parts["val"].x,
             y_val=parts["val"].y, t_val=parts["val"].times)
    fixed = {k: v for k, v in step.params.items() if k not in ("n_estimators", "early_stopping_rounds", "log_every")
             and f"families.lightgbm.{k}" not in SPACE}
    return {"fixed": fixed, "seed": step.seed}, arrays


PLAIN = '''
import json, sys, time
import numpy as np, optuna, lightgbm as lgb
from tkplan.families._metrics import rank_ic

arrays, fixed, seed, trials, jobs, rounds, patience = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), \\
    int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
d = np.load(arrays)

def objective(trial):
    params = {**fixed, "objective": "regression", "verbosity": -1, "seed": seed,
              "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
              "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
              "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 200),
              "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0)}
    train = lgb.Dataset(d["x_train"], label=d["y_train"])
    val = lgb.Dataset(d["x_val"], label=d["y_val"], reference=train)
    booster = lgb.train(params, train, num_boost_round=rounds, valid_sets=[val],
                        callbacks=[lgb.early_stopping(patience, verbose=False)])
    value = rank_ic(d["y_val"], booster.predict(d["x_val"]), d["t_val"])
    return float("nan") if value is None else value

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=42, n_startup_trials=10))
study.optimize(objective, n_trials=trials, n_jobs=jobs)
values = [t.value for t in study.trials if t.value is not None]
print(json.dumps({"best": study.best_value, "values": values}))
'''


def plain_optuna(arrays: Path, facts: dict[str, Any], trials: int, jobs: int) -> dict[str, Any]:
    """(b): one Python process, ``study.optimize(n_jobs=jobs)``, LightGBM's default threads."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PLAIN, str(arrays), json.dumps(_lightgbm_names(facts["fixed"])),
                           str(facts["seed"]), str(trials), str(jobs), str(ROUNDS["n_estimators"]),
                           str(ROUNDS["early_stopping_rounds"])], capture_output=True, text=True, check=False,
                          env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"plain Optuna failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "best": result["best"], "values": result["values"]}


HYDRA_APP = '''
import json
import numpy as np, lightgbm as lgb, hydra
from scipy.stats import rankdata

def rank_ic(y, pred, times):
    order = np.argsort(times, kind="stable")
    bounds = np.flatnonzero(np.diff(times[order])) + 1
    values = []
    for group in np.split(order, bounds):
        a, b = rankdata(y[group]), rankdata(pred[group])
        a, b = a - a.mean(), b - b.mean()
        scale = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
        if scale > 0:
            values.append(float(np.sum(a * b)) / scale)
    return float(np.mean(values))

@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg):
    d = np.load(cfg.arrays)
    params = {**json.loads(cfg.fixed), "objective": "regression", "verbosity": -1, "seed": cfg.seed,
              "num_leaves": int(cfg.num_leaves), "learning_rate": float(cfg.learning_rate),
              "min_data_in_leaf": int(cfg.min_data_in_leaf), "feature_fraction": float(cfg.feature_fraction)}
    train = lgb.Dataset(d["x_train"], label=d["y_train"])
    val = lgb.Dataset(d["x_val"], label=d["y_val"], reference=train)
    booster = lgb.train(params, train, num_boost_round=cfg.rounds, valid_sets=[val],
                        callbacks=[lgb.early_stopping(cfg.patience, verbose=False)])
    return rank_ic(d["y_val"], booster.predict(d["x_val"]), d["t_val"])

if __name__ == "__main__":
    main()
'''


def hydra_sweeper(python: Path, work: Path, arrays: Path, facts: dict[str, Any], trials: int,
                  jobs: int) -> dict[str, Any]:
    """(c): Hydra's Optuna sweeper, ``n_jobs=jobs`` (a batch of trials at a time through the basic launcher)."""
    app = work / "hydra"
    app.mkdir(exist_ok=True)
    (app / "app.py").write_text(HYDRA_APP)
    (app / "config.yaml").write_text(textwrap.dedent(f"""\
        defaults:
          - override hydra/sweeper: optuna
          - _self_
        hydra:
          sweeper:
            sampler: {{seed: 42, n_startup_trials: 10}}
            direction: maximize
            n_trials: {trials}
            n_jobs: {jobs}
            params:
              num_leaves: int(tag(log, interval(8, 128)))
              learning_rate: tag(log, interval(0.01, 0.3))
              min_data_in_leaf: int(interval(10, 200))
              feature_fraction: interval(0.5, 1.0)
          sweep: {{dir: {app / 'multirun'}}}
          job_logging: {{root: {{level: WARN}}}}
        arrays: {arrays}
        fixed: '{json.dumps(_lightgbm_names(facts['fixed']))}'
        seed: {facts['seed']}
        rounds: {ROUNDS['n_estimators']}
        patience: {ROUNDS['early_stopping_rounds']}
        num_leaves: 31
        learning_rate: 0.1
        min_data_in_leaf: 20
        feature_fraction: 1.0
        """))
    start = time.perf_counter()
    done = subprocess.run([str(python), "app.py", "--multirun"], cwd=app, capture_output=True, text=True, check=False,
                          env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"Hydra's Optuna sweeper failed:\n{done.stderr[-3000:]}")
    from ruamel.yaml import YAML

    results = YAML(typ="safe").load((app / "multirun" / "optimization_results.yaml").read_text())
    return {"wall_s": wall, "best": float(results["best_value"])}


def _lightgbm_names(fixed: dict[str, Any]) -> dict[str, Any]:
    """The plan's fixed LightGBM parameters under LightGBM's own names (as tkplan's adapter passes them)."""
    from tkplan.families._gbdt import LightGBMAdapter

    return {LightGBMAdapter.names[k]: v for k, v in fixed.items() if k in LightGBMAdapter.names}


def mlp_study(work: Path, trials: int) -> dict[str, Any]:
    """The second study: MLP with the median pruner; what pruning saved against every trial's planned epochs."""
    epochs = 12
    document = {
        "run": {"name": "bench_mlp", "base_seed": 7},
        "campaign": {"families": ["mlp"], "targets": ["fwd_ret_5m"]},
        "data": {"synthetic": {"symbols": 16, "timestamps": 400, "features": 32}},
        "families": {"mlp": {"epochs": epochs, "batch_size": 256, "patience": epochs}},
        "search": {"families.mlp.learning_rate": {"float": [1.0e-6, 1.0e-2], "log": True},
                   "families.mlp.dropout": {"float": [0.0, 0.5]}},
        "tune": {"trials": trials, "pruner": {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 2},
                 "sampler": {"n_startup_trials": 4}},
    }
    (work / "mlp.yaml").write_text(json.dumps(document, indent=1))
    start = time.perf_counter()
    done = subprocess.run([*TKPLAN, "tune", "mlp.yaml", "--out", "mlp_study", "-q", "--format", "json"], cwd=work,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the MLP study failed:\n{done.stderr}")
    summary = json.loads(done.stdout)
    ran, saved_epochs, saved_s, pruned = 0, 0, 0.0, 0
    for trial in summary["trials"]:
        result = _step_result(work / "mlp_study", trial)
        if result is None:
            continue
        if trial["state"] == "PRUNED":
            pruned += 1
            curve = result["output"].get("curve") or []
            seconds = [c["epoch_s"] for c in curve if "epoch_s" in c]
            ran += len(curve)
            saved_epochs += epochs - len(curve)
            saved_s += (epochs - len(curve)) * (statistics.median(seconds) if seconds else 0.0)
        else:
            ran += int((result["output"].get("fit") or {}).get("epochs_run") or 0)
    return {"wall_s": wall, "trials": len(summary["trials"]), "pruned": pruned, "epochs_planned": epochs * trials,
            "epochs_run": ran, "epochs_saved": saved_epochs, "seconds_saved": saved_s,
            "best": summary["best"]["value"] if summary["best"] else None}


def _step_result(study_dir: Path, trial: dict[str, Any]) -> dict[str, Any] | None:
    steps = sorted((study_dir / trial["directory"] / "steps").glob("*/result.json")) if trial["directory"] else []
    return json.loads(steps[0].read_text()) if steps else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--mlp-trials", type=int, default=12)
    parser.add_argument("--hydra-python", type=Path, default=HYDRA_VENV if HYDRA_VENV.exists() else None)
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="tkplan-bench-tune-") as tmp:
        work = Path(tmp)
        facts, arrays = prepared(work)
        print(f"LightGBM on the built-in panel {PANEL}, {args.trials} trials, {cpus} CPUs, same space and data")
        results = {"(a) tkplan tune": tkplan_tune(work, args.trials)}
        results["(b) Optuna n_jobs"] = plain_optuna(arrays, facts, args.trials, cpus)
        if args.hydra_python is not None and Path(args.hydra_python).exists():
            results["(c) Hydra sweeper"] = hydra_sweeper(args.hydra_python, work, arrays, facts, args.trials, cpus)
        else:
            print("(c) skipped: no Hydra Optuna sweeper environment (--hydra-python; see this script's docstring)")
        for name, r in results.items():
            extra = f", {r['pruned']} pruned" if "pruned" in r else ""
            print(f"{name:20s} wall {r['wall_s']:7.1f} s   best val rank_ic {r['best']:.4f}{extra}")
        others = [r["wall_s"] for k, r in results.items() if not k.startswith("(a)")]
        ratio = results["(a) tkplan tune"]["wall_s"] / min(others)
        print(f"(a) / faster of the others = {ratio:.2f} (target ≤ 0.70: {'met' if ratio <= 0.7 else 'NOT met'})")
        spread = statistics.stdev(results["(b) Optuna n_jobs"]["values"])
        gap = results["(a) tkplan tune"]["best"] - max(r["best"] for k, r in results.items() if not k.startswith("(a)"))
        print(f"best value of (a) minus the best of the others = {gap:+.4f}; the sd of (b)'s trial values is "
              f"{spread:.4f}: {'within noise' if abs(gap) <= spread else 'beyond noise'}")
        mlp = mlp_study(work, args.mlp_trials)
        print(f"MLP study with pruning: {mlp['trials']} trials in {mlp['wall_s']:.1f} s, {mlp['pruned']} pruned; "
              f"{mlp['epochs_run']} of {mlp['epochs_planned']} planned epochs run, {mlp['epochs_saved']} epochs "
              f"(~{mlp['seconds_saved']:.1f} s of training) saved by pruning; best val rank_ic "
              f"{mlp['best'] if mlp['best'] is None else round(mlp['best'], 4)}")


if __name__ == "__main__":
    main()
