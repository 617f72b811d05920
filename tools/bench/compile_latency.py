"""Whole-process wall time of ``tkplan compile`` next to ``python -c pass`` and a Hydra app, in one run.

Usage: ``python tools/bench/compile_latency.py [--runs N]``

The campaign is the seed pipeline's 20 families (a project file ``tkplan.yaml`` lists them; the shipped
default campaign lists the nine CPU families of the demo), composed with 3 machine profiles and 2
command-line overrides: ``tkplan compile laptop ci_fast kaggle_safe run.threads=1
families.lightgbm.num_leaves=64``. Measured, the median of N runs each (after one warm-up run):

  * ``python -c pass`` — the interpreter's own start-up;
  * ``import attrs, cattrs, jsonschema, ruamel.yaml, psutil, pynvml, click`` — what eager imports would cost;
  * ``tkplan compile`` with an empty cache — a cold compile, as the first compile of these inputs;
  * ``tkplan compile --no-cache`` — a cold compile that neither reads nor writes the cache;
  * ``tkplan compile`` with unchanged inputs — answered from the compile cache;
  * a Hydra app (when ``hydra-core`` is installed) composing the equivalent tree: base config, the 20 family
    files, the same 3 machine profiles (``machine@_global_=[laptop,ci_fast,kaggle_safe]``) and the same 2
    overrides, printing the composed config.

Targets: cold compile ≤ 0.3 s; cached compile ≤ 1/3 of Hydra's time.

``tkplan`` is the console script installed for this interpreter, run directly (not a ``PATH`` shim).
Byte-code: every process runs with byte-code caching on (``PYTHONDONTWRITEBYTECODE`` removed), so the
warm-up writes the ``.pyc`` files that any installed package has; otherwise each run would recompile the
sources and measure the compiler, not tkplan.
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
from collections.abc import Callable
from pathlib import Path

HYDRA_APP = '''import hydra
from omegaconf import OmegaConf


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    print(OmegaConf.to_yaml(cfg, resolve=True)[:80])


main()
'''
MACHINES = ("laptop", "ci_fast", "kaggle_safe")
OVERRIDES = ("run.threads=1", "families.lightgbm.num_leaves=64")
EAGER_IMPORTS = "import attrs, cattrs, jsonschema, ruamel.yaml, psutil, pynvml, click"


def median_wall(cmd: list[str], runs: int, cwd: Path, env: Callable[[int], dict[str, str]]) -> float:
    """Median wall seconds of ``cmd`` over ``runs`` runs after one warm-up run; ``env(i)`` is run i's environment."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env(i), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def console_script() -> str:
    """The ``tkplan`` script pip installed for this interpreter.

    Not the first ``tkplan`` on ``PATH``: that may be a shim (pyenv's is a shell script that runs ``pyenv
    exec``), whose own start-up would be counted against tkplan but not against ``python -c pass`` or Hydra,
    which run on ``sys.executable``.
    """
    beside = Path(sys.executable).parent / "tkplan"
    if beside.is_file():
        return str(beside)
    return shutil.which("tkplan") or sys.exit("tkplan is not installed for this interpreter: pip install -e . first")


def families() -> list[str]:
    """The shipped family profiles: the seed pipeline's 20 families."""
    from tkplan.planner._sources import shipped_dir

    return sorted(p.stem for p in (shipped_dir() / "families").glob("*.yaml"))


def write_project(root: Path, names: list[str]) -> None:
    """The working directory of the tkplan runs: a project file whose campaign lists every family."""
    root.mkdir(parents=True)
    (root / "tkplan.yaml").write_text(json.dumps({"campaign": {"families": names}}))  # JSON is YAML


def write_hydra_tree(root: Path, names: list[str]) -> None:
    """An equivalent Hydra config tree from the shipped profiles: base + 20 family groups + 3 machines."""
    from tkplan.planner._sources import shipped_dir
    from tkplan.planner._yaml import load_path

    shipped = shipped_dir()
    conf = root / "conf"
    (conf / "family").mkdir(parents=True)
    (conf / "machine").mkdir()
    defaults: list[object] = ["_self_"]
    for name in names:
        data = load_path(shipped / "families" / f"{name}.yaml").data["families"][name]
        (conf / "family" / f"{name}.yaml").write_text(json.dumps(data))
        defaults.append({f"family@families.{name}": name})
    for name in MACHINES:
        (conf / "machine" / f"{name}.yaml").write_text(json.dumps(load_path(shipped / "machines" / f"{name}.yaml").data))
    base = load_path(shipped / "base.yaml").data
    base["campaign"]["families"] = names
    base["defaults"] = [*defaults, {"machine@_global_": list(MACHINES)}]
    (conf / "config.yaml").write_text(json.dumps(base))
    (root / "app.py").write_text(HYDRA_APP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tkplan = console_script()
    names = families()
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("TKPLAN")}
    compile_args = [*MACHINES, *OVERRIDES]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        project = work / "project"
        write_project(project, names)
        cache = {"TKPLAN_CACHE_DIR": str(work / "cache")}
        same = lambda i: {**base_env, **cache}
        fresh = lambda i: {**base_env, "TKPLAN_CACHE_DIR": str(work / f"cold-cache-{i}")}
        check = subprocess.run([tkplan, "compile", *compile_args], cwd=project, env=same(0), capture_output=True,
                               text=True)
        if check.returncode != 0:
            sys.exit(f"tkplan compile failed:\n{check.stderr}")
        steps = check.stdout.split("(", 1)[1].split(" steps", 1)[0]
        rows = [("python -c pass", median_wall([sys.executable, "-c", "pass"], args.runs, work, same)),
                ("eager imports (attrs cattrs jsonschema ruamel psutil pynvml click)",
                 median_wall([sys.executable, "-c", EAGER_IMPORTS], args.runs, work, same)),
                ("tkplan compile, cold (empty cache)",
                 median_wall([tkplan, "compile", *compile_args], args.runs, project, fresh)),
                ("tkplan compile --no-cache",
                 median_wall([tkplan, "compile", "--no-cache", *compile_args], args.runs, project, same)),
                ("tkplan compile, unchanged inputs (cache)",
                 median_wall([tkplan, "compile", *compile_args], args.runs, project, same))]
        if importlib.util.find_spec("hydra") is not None:
            write_hydra_tree(work / "hydra", names)
            cmd = [sys.executable, "app.py", "hydra.run.dir=.", "hydra.output_subdir=null",
                   "hydra/job_logging=disabled", "hydra/hydra_logging=disabled", *OVERRIDES]
            rows.append(("hydra compose (same tree, machines and overrides)", median_wall(cmd, args.runs, work / "hydra", same)))
    width = max(len(name) for name, _ in rows)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"{len(names)} families ({steps} steps), machines {'+'.join(MACHINES)}, overrides {' '.join(OVERRIDES)}")
    print(f"{os.cpu_count()} CPUs, load average {load}; median wall time of {args.runs} runs each (after one warm-up)")
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:6.3f} s")
    times = dict(rows)
    cold, cached = times["tkplan compile, cold (empty cache)"], times["tkplan compile, unchanged inputs (cache)"]
    start = times["python -c pass"]
    verdict = lambda ok: "met" if ok else "MISSED"
    print(f"cold compile: {cold:.3f} s, target ≤ 0.300 s: {verdict(cold <= 0.3)} ({cold - start:.3f} s beyond "
          "interpreter start-up)")
    hydra = next((t for name, t in rows if name.startswith("hydra")), None)
    if hydra is not None:
        print(f"cached compile / hydra: {cached / hydra:.2f}, target ≤ 0.33: {verdict(cached <= hydra / 3)}; "
              f"cold compile / hydra: {cold / hydra:.2f}")
    else:
        print("hydra-core not installed: pip install hydra-core to compare")


if __name__ == "__main__":
    main()
