"""Whole-process wall time of ``tkplan compile`` next to ``python -c pass`` and a Hydra app, in one run.

Usage: ``python tools/bench/compile_latency.py [--runs N]``

Measures the median of N runs each of:
  * ``python -c pass`` — the interpreter's own start-up;
  * ``tkplan compile --no-cache`` — a cold compile of the default 20-family campaign;
  * ``tkplan compile`` — the same with unchanged inputs (answered from the compile cache);
  * a Hydra app (when ``hydra-core`` is installed) composing an equivalent tree: the 20 family files, 3
    machine profiles and 2 command-line overrides, printing the composed config.
Targets: cold compile ≤ 0.3 s; cached compile ≤ 1/3 of Hydra's time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HYDRA_APP = '''import hydra
from omegaconf import OmegaConf


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    print(OmegaConf.to_yaml(cfg, resolve=True)[:80])


main()
'''
MACHINES = ("laptop", "ci_fast", "kaggle_safe")


def median_wall(cmd: list[str], runs: int, cwd: Path, env: dict[str, str]) -> float:
    """Median wall seconds of ``cmd`` over ``runs`` runs (after one warm-up run)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_hydra_tree(root: Path) -> None:
    """An equivalent Hydra config tree from the shipped profiles: base + 20 family groups + machines."""
    from tkplan.planner._sources import shipped_dir
    from tkplan.planner._yaml import load_path

    shipped = shipped_dir()
    conf = root / "conf"
    (conf / "family").mkdir(parents=True)
    (conf / "machine").mkdir()
    defaults: list[object] = ["_self_"]
    for path in sorted((shipped / "families").glob("*.yaml")):
        name = path.stem
        data = load_path(path).data["families"][name]
        (conf / "family" / f"{name}.yaml").write_text(json.dumps(data))  # JSON is YAML
        defaults.append({f"family@families.{name}": name})
    for name in MACHINES:
        (conf / "machine" / f"{name}.yaml").write_text(json.dumps(load_path(shipped / "machines" / f"{name}.yaml").data))
    base = load_path(shipped / "base.yaml").data
    base["defaults"] = [*defaults, {"machine@_global_": "laptop"}]
    (conf / "config.yaml").write_text(json.dumps(base))
    (root / "app.py").write_text(HYDRA_APP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tkplan = shutil.which("tkplan") or sys.exit("tkplan is not on PATH: pip install -e . first")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "TKPLAN_CACHE_DIR": str(work / "cache")}
        rows = [("python -c pass", median_wall([sys.executable, "-c", "pass"], args.runs, work, env))]
        rows.append(("tkplan compile (cold, --no-cache)",
                     median_wall([tkplan, "compile", "--no-cache", "ci_fast", "run.threads=1"], args.runs, work, env)))
        rows.append(("tkplan compile (unchanged inputs)",
                     median_wall([tkplan, "compile", "ci_fast", "run.threads=1"], args.runs, work, env)))
        if importlib.util.find_spec("hydra") is not None:
            write_hydra_tree(work / "hydra")
            cmd = [sys.executable, "app.py", "hydra.run.dir=.", "hydra.output_subdir=null",
                   "hydra/job_logging=disabled", "hydra/hydra_logging=disabled",
                   "machine@_global_=ci_fast", "run.threads=1", "families.lightgbm.num_leaves=64"]
            rows.append(("hydra compose (20 families, 3 machines, 2 overrides)", median_wall(cmd, args.runs, work / "hydra", env)))
    width = max(len(name) for name, _ in rows)
    print(f"median wall time of {args.runs} runs each (after one warm-up)")
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:6.3f} s")
    times = dict(rows)
    cold, cached = times["tkplan compile (cold, --no-cache)"], times["tkplan compile (unchanged inputs)"]
    start = times["python -c pass"]
    print(f"cold compile: {cold:.3f} s (target ≤ 0.300 s; {cold - start:.3f} s beyond interpreter start-up)")
    hydra = next((t for name, t in rows if name.startswith("hydra")), None)
    if hydra is not None:
        print(f"cached compile / hydra: {cached / hydra:.2f} (target ≤ 0.33); cold compile / hydra: {cold / hydra:.2f}")
    else:
        print("hydra-core not installed: pip install hydra-core to compare")


if __name__ == "__main__":
    main()
