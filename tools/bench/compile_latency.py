"""Whole-process wall time of ``tkplan compile`` next to ``python -c pass`` and a Hydra app, in one run.

Usage: ``python tools/bench/compile_latency.py [--runs N] [--against REF [--instructions]] [--hardware SPEC]``

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

``--against REF`` also compares this working tree with the git ref ``REF`` (``main``) in the same run: each
tree is built into a wheel and installed into a directory of its own, the same way, and their three
compiles are timed turn about (A, B, A, B, …, so that a change of load hits both), in wall time and in
the child's CPU time (steadier on a shared machine); the ratios say whether this tree is slower.
With ``--instructions`` each of those compiles is also run once under valgrind's callgrind, which counts the
instructions it executes: a count that a shared machine's load does not move, for differences of a few per
cent that wall and CPU time cannot show (on a 2-core VM the same code, installed twice, timed 0.95 of itself).

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
import re
import resource
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


def median_walls(cmds: list[list[str]], runs: int, cwd: Path,
                 envs: list[Callable[[int], dict[str, str]]]) -> list[tuple[float, float]]:
    """Median (wall, CPU) seconds of each command, run turn about ``runs`` times after one warm-up round.

    CPU is the child's user + system time: on a loaded machine it moves far less than wall time.
    """
    times: list[list[tuple[float, float]]] = [[] for _ in cmds]
    for i in range(runs + 1):
        for cmd, env, out in zip(cmds, envs, times, strict=True):
            before, start = _children_cpu(), time.perf_counter()
            subprocess.run(cmd, cwd=cwd, env=env(i), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wall, cpu = time.perf_counter() - start, _children_cpu() - before
            if i:
                out.append((wall, cpu))
    return [(statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for t in times]


def _children_cpu() -> float:
    """User + system seconds of the finished child processes (microsecond resolution, unlike ``os.times``)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def instructions(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Instructions that ``cmd`` (and any child) executes in user space, counted by valgrind's callgrind.

    ``PYTHONHASHSEED`` is fixed so that set and dict orders, and so the count, are the same each time.
    """
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                               f"--callgrind-out-file={out}/callgrind.%p", *cmd], cwd=cwd,
                              env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True)
    return sum(int(n.replace(",", "")) for n in re.findall(r"I\s+refs:\s+([\d,]+)", done.stderr))


def install_tree(ref: str | None, work: Path) -> Path:
    """Build the working tree (``ref`` None) or a git ref's tree into a wheel, install it under ``work``;
    return the install directory (its ``bin/tkplan`` runs with it on ``PYTHONPATH``)."""
    root = Path(__file__).resolve().parents[2]
    src, target = work / "src", work / "site"
    src.mkdir(parents=True)
    if ref is None:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                                check=True, capture_output=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            if (root / name).is_file():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / name, src / name)
    else:
        archive = subprocess.run(["git", "archive", ref], cwd=root, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    errors = []
    for python in dict.fromkeys([sys.executable, getattr(sys, "_base_executable", sys.executable)]):
        built = subprocess.run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--wheel-dir",
                                str(work / "dist"), str(src)], capture_output=True, text=True, check=False)
        if built.returncode == 0:
            break
        errors.append(built.stderr[-2000:])
    else:
        sys.exit("cannot build a wheel of " + (ref or "the working tree") + ":\n" + "\n".join(errors))
    wheel = next((work / "dist").glob("tkplan-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True)
    return target


def tree_env(base_env: dict[str, str], site: Path, caches: Path, cold: bool) -> Callable[[int], dict[str, str]]:
    """Run i's environment for the tree installed in ``site``: a fresh cache per run when ``cold``."""
    def env(i: int) -> dict[str, str]:
        cache = caches / (f"cold-{i}" if cold else "same")
        return {**base_env, "PYTHONPATH": str(site), "TKPLAN_CACHE_DIR": str(cache)}
    return env


def compare(ref: str, runs: int, work: Path, project: Path, base_env: dict[str, str], compile_args: list[str],
            count: bool) -> None:
    """Time the three compiles of ``ref`` and of this working tree turn about; print both and their ratios, and
    (``count``) the instructions each executes."""
    trees = {label: install_tree(ref if label != "this tree" else None, work / f"tree-{i}")
             for i, label in enumerate((ref, "this tree"))}
    rows: dict[str, list[tuple[float, float]]] = {}
    counts: dict[str, list[int]] = {}
    for kind, extra, cold in (("cold (empty cache)", [], True), ("--no-cache", ["--no-cache"], False),
                              ("unchanged inputs (cache)", [], False)):
        cmds = [[str(site / "bin" / "tkplan"), "compile", *extra, *compile_args] for site in trees.values()]
        envs = [tree_env(base_env, site, work / f"cache-{i}", cold) for i, site in enumerate(trees.values())]
        rows[kind] = median_walls(cmds, runs, project, envs)
        if count:  # after the timed runs: the byte-code is written and a cached compile finds its entry
            counts[kind] = [instructions(cmd, project, env(runs + 1)) for cmd, env in zip(cmds, envs, strict=True)]
    width = max(len(k) for k in rows)
    print(f"\nthis working tree against {ref} (each built into a wheel and installed alike; run turn about):")
    print(f"  {'tkplan compile':<{width}}  {'wall ' + ref:>14}  {'this tree':>9}  ratio  {'CPU ' + ref:>13}  "
          f"{'this tree':>9}  ratio")
    for kind, ((wall_a, cpu_a), (wall_b, cpu_b)) in rows.items():
        print(f"  {kind:<{width}}  {wall_a:12.3f} s  {wall_b:7.3f} s  {wall_b / wall_a:5.2f}  {cpu_a:11.3f} s  "
              f"{cpu_b:7.3f} s  {cpu_b / cpu_a:5.2f}")
    slower = [kind for kind, ((_, cpu_a), (_, cpu_b)) in rows.items() if cpu_b > cpu_a * 1.05]
    print(f"CPU time: no slower than {ref} (within 5 %)" if not slower
          else f"CPU time: SLOWER than {ref}: {', '.join(slower)}")
    if counts:
        print(f"\n  {'instructions (callgrind)':<{width}}  {ref:>14}  {'this tree':>9}  ratio")
        for kind, (count_a, count_b) in counts.items():
            print(f"  {kind:<{width}}  {count_a / 1e6:12.1f} M  {count_b / 1e6:7.1f} M  {count_b / count_a:5.3f}")
        more = [kind for kind, (count_a, count_b) in counts.items() if count_b > count_a * 1.01]
        print(f"instructions: no more than {ref} (within 1 %)" if not more
              else f"instructions: MORE than {ref}: {', '.join(more)}")


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
        machine = load_path(shipped / "machines" / f"{name}.yaml").data
        (conf / "machine" / f"{name}.yaml").write_text(json.dumps(machine))
    base = load_path(shipped / "base.yaml").data
    base["campaign"]["families"] = names
    base["defaults"] = [*defaults, {"machine@_global_": list(MACHINES)}]
    (conf / "config.yaml").write_text(json.dumps(base))
    (root / "app.py").write_text(HYDRA_APP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--against", metavar="REF", help="also compare this working tree with git ref REF (main)")
    parser.add_argument("--instructions", action="store_true",
                        help="with --against, also count each compile's instructions under valgrind (callgrind)")
    parser.add_argument("--hardware", metavar="SPEC", type=Path,
                        help="compile for this hardware spec instead of probing this machine (kaggle_safe needs a "
                             "CUDA GPU: on a machine without one, e.g. tests/specs/kaggle_t4.yaml)")
    args = parser.parse_args()
    if args.instructions and not (args.against and shutil.which("valgrind")):
        parser.error("--instructions needs --against REF and valgrind (apt install valgrind)")
    tkplan = console_script()
    names = families()
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("TKPLAN")}
    compile_args = [*(["--hardware", str(args.hardware.resolve())] if args.hardware else []), *MACHINES, *OVERRIDES]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        project = work / "project"
        write_project(project, names)
        cache = {"TKPLAN_CACHE_DIR": str(work / "cache")}

        def same(i: int) -> dict[str, str]:
            return {**base_env, **cache}

        def fresh(i: int) -> dict[str, str]:
            return {**base_env, "TKPLAN_CACHE_DIR": str(work / f"cold-cache-{i}")}

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
            rows.append(("hydra compose (same tree, machines and overrides)",
                         median_wall(cmd, args.runs, work / "hydra", same)))
        report(rows, names, steps, args.runs)
        if args.against:
            compare(args.against, args.runs, work, project, base_env, compile_args, args.instructions)


def report(rows: list[tuple[str, float]], names: list[str], steps: str, runs: int) -> None:
    """Print the figures, then each target with its verdict."""
    width = max(len(name) for name, _ in rows)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"{len(names)} families ({steps} steps), machines {'+'.join(MACHINES)}, overrides {' '.join(OVERRIDES)}")
    print(f"{os.cpu_count()} CPUs, load average {load}; median wall time of {runs} runs each (after one warm-up)")
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:6.3f} s")
    times = dict(rows)
    cold, cached = times["tkplan compile, cold (empty cache)"], times["tkplan compile, unchanged inputs (cache)"]
    start = times["python -c pass"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"
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
