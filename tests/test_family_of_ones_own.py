"""A family of one's own: `tkplan init family`, runtime traits left to their defaults, entrypoints checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TKPLAN = [sys.executable, "-c", "from tkplan.cli import run; run()"]
SMALL = ("data.synthetic.symbols=8", "data.synthetic.timestamps=120", "data.min_cs=4")


def tkplan(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``tkplan`` console script in ``cwd``, as a user would, with no TKPLAN variable of this shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
    env["TKPLAN_CACHE_DIR"] = str(cwd / ".cache")
    return subprocess.run([*TKPLAN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_init_family_compiles_and_runs_green(tmp_path):
    """The written profile and trainer compile and run as they are; the leaderboard ranks the new family."""
    init = tkplan(tmp_path, "init", "family", "ridge")
    assert init.returncode == 0, init.stderr
    assert init.stdout.splitlines() == [
        "wrote profiles/families/ridge.yaml", "wrote trainers/ridge.py",
        "next: tkplan compile campaign.families=[ridge] -o plan.json && tkplan run plan.json"]
    compiled = tkplan(tmp_path, "compile", "campaign.families=[ridge]", *SMALL, "-o", "plan.json")
    assert compiled.returncode == 0, compiled.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [s["entrypoint"] for s in plan["steps"]] == ["trainers.ridge:fit"] * 2
    runtime = plan["config"]["families"]["ridge"]["runtime"]
    assert runtime["display_name"] == "ridge" and runtime["gpu"] == "none"
    assert plan["steps"][0]["isolation"]["mode"] == "process"
    ran = tkplan(tmp_path, "run", "plan.json", "--format", "json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert {r["step_id"]: r["status"] for r in summary["results"]} == {
        "ridge.fwd_ret_5m.s42": "ok", "ridge.will_peak_5m.s42": "ok"}
    report = tkplan(tmp_path, "report", summary["run_dir"])
    assert report.returncode == 0, report.stderr
    firsts = [line.split() for line in report.stdout.splitlines() if line.split()[:1] == ["1*"]]  # * the best
    assert [row[1] for row in firsts] == ["ridge", "ridge"]


def test_init_family_refuses_what_it_would_overwrite_or_shadow(tmp_path):
    assert tkplan(tmp_path, "init", "family", "mine").returncode == 0
    again = tkplan(tmp_path, "init", "family", "mine")
    assert again.returncode == 2
    assert "profiles/families/mine.yaml already exists" in again.stderr
    shipped = tkplan(tmp_path, "init", "family", "lightgbm")
    assert shipped.returncode == 2
    assert "'lightgbm' is a family tkplan ships" in shipped.stderr
    assert not (tmp_path / "trainers" / "lightgbm.py").exists()


def project(tmp_path: Path, entrypoint: str, trainer: str, runtime: str = "") -> Path:
    """A project with the family ``mine``: its profile (``runtime`` lines appended) and ``my_trainer.py``."""
    (tmp_path / "profiles" / "families").mkdir(parents=True)
    (tmp_path / "profiles" / "families" / "mine.yaml").write_text(
        f"families:\n  mine:\n    entrypoint: {entrypoint}\n    depth: 3\n{runtime}")
    (tmp_path / "my_trainer.py").write_text(trainer)
    return tmp_path


class TestRuntimeDefaults:
    """Traits a family leaves out take the defaults documented in family_runtime.json, each recorded."""

    def test_a_minimal_family_is_an_entrypoint_and_its_parameters(self, tmp_path):
        project(tmp_path, "my_trainer:fit", "def fit(ctx):\n    return {'metrics': {}}\n")
        compiled = tkplan(tmp_path, "compile", "--hermetic", "campaign.families=[mine]", "--format", "json")
        assert compiled.returncode == 0, compiled.stderr
        plan = json.loads(compiled.stdout)
        assert plan["config"]["families"]["mine"]["runtime"] == {
            "display_name": "mine", "backends": ["numpy"], "thread_policy": "blas", "cost": 1.0,
            "threads": {"min": 1, "max": None, "reserve": 0}, "gpu": "none",
            "isolation": {"mode": "process", "reason": "a family of your own runs in its own process unless its "
                                                       "profile says otherwise: its threads, memory and imports stay "
                                                       "its own"},
            "vram_cap_mb": None, "tasks": ["regression", "binary"], "multi_target": False, "sequence": False,
            "nan_ok": False, "env": {}}
        assert plan["steps"][0]["params"] == {"depth": 3}
        explained = tkplan(tmp_path, "explain", "families.mine.runtime.gpu", "--hermetic", "campaign.families=[mine]")
        assert explained.stdout.splitlines()[1].split() == ["*", "tkplan:schema/family_runtime.json", "default",
                                                            '"none"']

    def test_a_mode_without_a_reason_is_explained_by_where_it_was_set(self, tmp_path):
        project(tmp_path, "my_trainer:fit", "def fit(ctx):\n    return {'metrics': {}}\n",
                "    runtime:\n      isolation: {mode: inproc}\n      threads: {max: 1}\n")
        compiled = tkplan(tmp_path, "compile", "--hermetic", "campaign.families=[mine]", "--format", "json")
        assert compiled.returncode == 0, compiled.stderr
        step = json.loads(compiled.stdout)["steps"][0]
        assert step["isolation"] == {"mode": "inproc", "reason": "inproc, as families.mine.runtime.isolation.mode "
                                                                 "says (profiles/families/mine.yaml:6:19)"}
        runtime = json.loads(compiled.stdout)["config"]["families"]["mine"]["runtime"]
        assert runtime["threads"] == {"min": 1, "max": 1, "reserve": 0}

    def test_a_misspelt_family_is_still_unknown(self, tmp_path):
        compiled = tkplan(tmp_path, "compile", "--hermetic", "+families.lightgbn.num_leaves=3")
        assert compiled.returncode == 3
        assert "unknown family 'lightgbn' @ families.lightgbn (did you mean 'lightgbm'?)" in compiled.stderr


class TestEntrypointChecks:
    """`compile` finds an entrypoint's module and function without running the module (exit 3, located)."""

    HEAVY = "import torch\nimport lightgbm\n\n\ndef train(ctx):\n    return {'metrics': {}}\n"

    @pytest.mark.parametrize(("entrypoint", "message"), [
        ("my_trainer:fit", "entrypoint 'my_trainer:fit': {trainer} defines no 'fit' @ families.mine.entrypoint "
                           "(define `def fit(ctx)` there, or name one of its functions)"),
        ("nowhere.my_trainer:fit", "entrypoint 'nowhere.my_trainer:fit': no module 'nowhere.my_trainer' @ "
                                   "families.mine.entrypoint (looked in the installed packages, {project}; "),
    ])
    def test_a_missing_module_or_function_is_a_located_config_error(self, tmp_path, entrypoint, message):
        project(tmp_path, entrypoint, self.HEAVY)
        compiled = tkplan(tmp_path, "compile", "--hermetic", "campaign.families=[mine]")
        assert compiled.returncode == 3
        expected = message.format(trainer=tmp_path / "my_trainer.py", project=tmp_path)
        assert f"error: profiles/families/mine.yaml:3:5: {expected}" in compiled.stderr

    def test_checking_imports_nothing_of_the_trainer(self, tmp_path):
        """The trainer imports torch and lightgbm at its top; compile checks it without loading either."""
        from tests.test_import_weight import loaded_by

        project(tmp_path, "my_trainer:train", self.HEAVY)
        assert loaded_by(["compile", "--hermetic", "--no-cache", "campaign.families=[mine]"], tmp_path) == []

    def test_a_cached_compile_sees_the_trainer_change(self, tmp_path):
        """The compile cache watches the trainer's source: renaming its function is found on the next compile."""
        project(tmp_path, "my_trainer:fit", "def fit(ctx):\n    return {'metrics': {}}\n")
        assert tkplan(tmp_path, "compile", "--hermetic", "campaign.families=[mine]").returncode == 0
        (tmp_path / "my_trainer.py").write_text("def train(ctx):\n    return {'metrics': {}}\n")
        again = tkplan(tmp_path, "compile", "--hermetic", "campaign.families=[mine]")
        assert again.returncode == 3
        assert "defines no 'fit'" in again.stderr

    def test_a_function_bound_by_an_import_or_a_branch_counts(self, tmp_path):
        project(tmp_path, "my_trainer:fit",
                "try:\n    from json import loads as fit\nexcept ImportError:\n    fit = None\n")
        assert tkplan(tmp_path, "compile", "--hermetic", "campaign.families=[mine]").returncode == 0
