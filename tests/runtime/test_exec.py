"""``tkplan exec``: a command of one's own run as a step, under the step's limits, reading the plan's values."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from .projects import TKPLAN, compile_project, family, save_plan, write_project

TRAINER = textwrap.dedent("""\
    import json, os
    step = json.load(open(os.environ["TKPLAN_STEP_FILE"]))
    print(os.environ["TKPLAN_STEP_ID"], os.environ["TKPLAN_PLAN_HASH"][:12])
    print(step["params"]["learning_rate"], step["seed"], step["limits"]["timeout_s"], step["resources"]["threads"])
    print(step["config"]["data"]["source"])
""")


def plan_file(tmp_path, **limits):
    project = write_project(tmp_path / "project", {"mine": family("ok", learning_rate=0.05)}, **limits)
    plan = compile_project(project)
    return plan, save_plan(plan, tmp_path / "plan.json")


def tkplan_exec(plan_path, *command, cwd):
    return subprocess.run([*TKPLAN, "exec", str(plan_path), "mine.y.s42", "--", *map(str, command)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_a_trainer_reads_its_step_from_the_plan(tmp_path):
    plan, path = plan_file(tmp_path)
    (tmp_path / "train.py").write_text(TRAINER)
    done = tkplan_exec(path, sys.executable, "train.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    step = plan.step("mine.y.s42")
    assert done.stdout.splitlines() == [f"mine.y.s42 {plan.plan_hash[:12]}",
                                        f"0.05 {step.seed} 30 {step.resources.threads}",
                                        "builtin:synthetic_panel"]
    assert not list(tmp_path.glob("**/step.json"))  # the step file went with the command


def test_the_steps_timeout_kills_the_command_and_its_group(tmp_path):
    _, path = plan_file(tmp_path, timeout_s=2)
    pid_file = tmp_path / "pids"
    script = (f"import subprocess, time; p = subprocess.Popen(['sleep', '30']); "
              f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(4); print('finished')")
    done = tkplan_exec(path, sys.executable, "-c", script, cwd=tmp_path)
    assert done.returncode == 124, done.stdout + done.stderr
    assert "finished" not in done.stdout
    assert "tkplan exec: mine.y.s42 ended timeout: ran past its 2 s timeout; process group killed" in done.stderr
    grandchild = int(pid_file.read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE


def test_the_steps_memory_cap_kills_the_command(tmp_path):
    _, path = plan_file(tmp_path, memory_cap_gb=0.25)
    script = ("import time\nchunks = []\nfor _ in range(40):\n    chunks.append(b'1' * 20 * 2**20); time.sleep(0.02)\n"
              "time.sleep(30)")
    done = tkplan_exec(path, sys.executable, "-c", script, cwd=tmp_path)
    assert done.returncode == 137, done.stdout + done.stderr
    assert "ended oom: RSS of its process group reached" in done.stderr and "over its 256 MB cap" in done.stderr


def test_a_failing_command_keeps_its_exit_code_and_a_signal_is_128_plus_it(tmp_path):
    _, path = plan_file(tmp_path)
    assert tkplan_exec(path, sys.executable, "-c", "raise SystemExit(3)", cwd=tmp_path).returncode == 3
    killed = tkplan_exec(path, sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
                         cwd=tmp_path)
    assert killed.returncode == 128 + 11
    assert "ended crashed: killed by SIGSEGV" in killed.stderr


def test_the_readmes_trainer_runs_as_a_step(tmp_path):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    code = next(block for block in readme.split("```python\n")[1:] if "TKPLAN_STEP_FILE" in block).split("```")[0]
    (tmp_path / "train.py").write_text(code)
    plan, path = plan_file(tmp_path)
    done = tkplan_exec(path, sys.executable, "train.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    step = plan.step("mine.y.s42")
    assert done.stdout == f"mine.y.s42: learning_rate 0.05, seed {step.seed}, {step.resources.threads} threads\n"
