"""The data is part of the plan: a user's CSV measured at compile, checked again before the first step.

Through the real command line: relative paths resolve where they were written and are stored relative to
the project root; a changed file is refused (exit 5) unless ``--allow-data-drift``; the digest is reused while
the file is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.families.plans import MACHINE
from tkplan.planner import CompileRequest, compile_plan

PROJECT = {
    "run": {"name": "mine", "threads": 2},
    "campaign": {"families": ["ftrl_proximal"], "targets": ["y"]},
    "data": {"source": "data/panel.csv", "tasks": {"y": "regression"}, "min_cs": 1,
             "splits": {"purge_gap": 2, "val_ratio": 0.2, "test_ratio": 0.2}},
}


def write_panel(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    symbols, times = 4, 60
    frame = pd.DataFrame({"symbol": np.tile([f"S{i}" for i in range(symbols)], times),
                          "ts": np.repeat(np.arange(times), symbols),
                          "f0": rng.standard_normal(symbols * times), "f1": rng.standard_normal(symbols * times)})
    frame["y"] = frame["f0"] + rng.standard_normal(len(frame))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def make_project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "tkplan.yaml").write_text(json.dumps(PROJECT))  # JSON is YAML
    (root / "conf").mkdir()
    (root / "conf" / "other_copy.yaml").write_text("data:\n  source: ../data/panel.csv\n")
    write_panel(root / "data" / "panel.csv")
    return root


def tkplan(*args: object, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
    env["TKPLAN_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "tkplan.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_plan_records_the_data_and_is_the_same_bytes_wherever_the_project_lives(tmp_path):
    """A path in tkplan.yaml is relative to it, one in conf/ relative to conf/; both store data/panel.csv."""
    cache = tmp_path / "cache"
    here = make_project(tmp_path / "a" / "project")
    there = make_project(tmp_path / "b" / "deeper" / "project")
    assert tkplan("compile", "--hermetic", "-o", "plan.json", cwd=here, cache=cache).returncode == 0
    done = tkplan("compile", "--hermetic", "-o", "plan.json", cwd=there, cache=cache)
    assert done.returncode == 0, done.stderr
    assert (here / "plan.json").read_bytes() == (there / "plan.json").read_bytes()
    plan = json.loads((here / "plan.json").read_text())
    panel = here / "data" / "panel.csv"
    assert plan["data"] == {"source": "data/panel.csv", "size": panel.stat().st_size, "sha256": sha256(panel),
                            "generator": {}}
    assert plan["config"]["data"]["source"] == "data/panel.csv"
    step = plan["steps"][0]
    assert len(step["digest"]) == 64 and len(step["data"]) == 64

    via_file = tkplan("compile", "--hermetic", "--format", "json", "conf/other_copy.yaml", cwd=here, cache=cache)
    assert json.loads(via_file.stdout)["data"] == plan["data"]


def test_a_saved_plan_runs_from_any_directory(tmp_path):
    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    assert tkplan("compile", "--hermetic", "-o", "plan.json", cwd=project, cache=cache).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = tkplan("run", project / "plan.json", "--out", "run", "-q", cwd=elsewhere, cache=cache)
    assert done.returncode == 0, done.stdout + done.stderr
    meta = next((elsewhere / "run" / "data").glob("*/meta.json"))
    assert json.loads(meta.read_text())["source"].startswith(str(project / "data" / "panel.csv"))


def test_a_changed_data_file_is_refused_unless_drift_is_allowed(tmp_path):
    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    panel = project / "data" / "panel.csv"
    compiled = tkplan("compile", "--hermetic", "-o", "plan.json", cwd=project, cache=cache)
    assert compiled.returncode == 0, compiled.stderr
    before = sha256(panel)
    write_panel(panel, seed=1)  # regenerated: same name, other content
    after = sha256(panel)

    refused = tkplan("run", "plan.json", "-q", cwd=project, cache=cache)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert f"error: {panel} changed since the plan was compiled: sha256 {before}" in refused.stderr
    assert f"{after} (" in refused.stderr and "pass --allow-data-drift" in refused.stderr
    assert not (project / "runs").exists()

    allowed = tkplan("run", "plan.json", "--allow-data-drift", cwd=project, cache=cache)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert f"data drift allowed: {panel} changed" in allowed.stderr

    recompiled = tkplan("compile", "--hermetic", "--format", "json", cwd=project, cache=cache)
    plan, old = json.loads(recompiled.stdout), json.loads((project / "plan.json").read_text())
    assert plan["data"]["sha256"] == after
    assert plan["plan_hash"] != old["plan_hash"]
    assert plan["steps"][0]["digest"] != old["steps"][0]["digest"]
    (project / "new.json").write_text(recompiled.stdout)
    diff = tkplan("diff", "plan.json", "new.json", cwd=project, cache=cache)
    assert diff.returncode == 1
    assert f"[data]\n  sha256: \"{before}\" → \"{after}\"" in diff.stdout


def test_the_digest_is_reused_while_the_file_is_unchanged(tmp_path):
    """The digest cache is keyed by path, size, mtime and inode: a cached digest is used as it is (shown here
    by planting one), and touching the file makes the compile read it again."""
    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    panel = project / "data" / "panel.csv"
    assert tkplan("compile", "--hermetic", cwd=project, cache=cache).returncode == 0
    [entry] = (cache / "data-digests").glob("*.json")
    planted = json.loads(entry.read_text()) | {"sha256": "0" * 64}
    entry.write_text(json.dumps(planted))

    def compiled_sha() -> str:
        done = tkplan("compile", "--hermetic", "--no-cache", "--format", "json", cwd=project, cache=cache)
        return json.loads(done.stdout)["data"]["sha256"]

    assert compiled_sha() == "0" * 64
    stat = panel.stat()
    os.utime(panel, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert compiled_sha() == sha256(panel)


def test_the_compile_cache_misses_when_the_data_changes(tmp_path):
    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    first = json.loads(tkplan("compile", "--hermetic", "--format", "json", cwd=project, cache=cache).stdout)
    write_panel(project / "data" / "panel.csv", seed=2)
    second = json.loads(tkplan("compile", "--hermetic", "--format", "json", cwd=project, cache=cache).stdout)
    assert second["data"]["sha256"] != first["data"]["sha256"]


def test_a_builtin_source_is_identified_by_its_generator_settings(tmp_path):
    """Step digests: a step changes digest when what decides its result changes, and only then."""
    def plan(*words: str):
        request = CompileRequest(words=("campaign.families=[lightgbm, ftrl_proximal]", *words), cwd=tmp_path,
                                 env={}, hermetic=True)
        return compile_plan(request, MACHINE, "spec", "test")

    base, bigger, tuned = plan(), plan("data.synthetic.symbols=20"), plan("families.lightgbm.num_leaves=7")
    assert base.data.source == "builtin:synthetic_panel" and base.data.sha256 is None
    assert dict(base.data.generator) == {"base_seed": 42, "synthetic": {"symbols": 16, "timestamps": 400,
                                                                        "features": 32, "noise": 1.0}}
    assert bigger.data.generator["synthetic"]["symbols"] == 20 and bigger.plan_hash != base.plan_hash
    assert all(a.digest != b.digest for a, b in zip(base.steps, bigger.steps, strict=True))
    for a, b in zip(base.steps, tuned.steps, strict=True):
        assert (a.digest == b.digest) == (a.family == "ftrl_proximal"), a.id


def test_a_relative_path_from_the_command_line_is_relative_to_the_working_directory(tmp_path):
    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    shutil.copy(project / "data" / "panel.csv", project / "conf" / "panel.csv")
    done = tkplan("compile", "--hermetic", "--format", "json", "data.source=conf/panel.csv", cwd=project, cache=cache)
    assert json.loads(done.stdout)["data"]["source"] == "conf/panel.csv"
    missing = tkplan("compile", "--hermetic", "data.source=nowhere.csv", cwd=project, cache=cache)
    assert missing.returncode == 6
    assert f"data.source: no file {project / 'nowhere.csv'}" in missing.stderr


def test_only_undeclared_numeric_columns_are_features_and_the_run_says_which(tmp_path):
    """A declared target that the campaign does not train and a text column are left out, each with its reason,
    shown when the run starts and kept in the prepared data's meta.json."""
    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    panel = project / "data" / "panel.csv"
    frame = pd.read_csv(panel)
    frame["sector"] = np.where(frame["f0"] > 0, "tech", "bank")
    frame["fwd_ret_15m"] = frame["y"] + frame["f1"]  # declared in data.tasks by the base profile
    frame.to_csv(panel, index=False)
    assert tkplan("compile", "--hermetic", "-o", "plan.json", cwd=project, cache=cache).returncode == 0
    done = tkplan("run", "plan.json", "--out", "run", cwd=project, cache=cache)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"data {panel} (240 rows): 2 features: f0, f1\n" in done.stderr
    assert "  not a feature: fwd_ret_15m: a declared target (data.tasks), never a feature\n" in done.stderr
    assert "  not a feature: sector: not numeric (dtype object); encode it to use it\n" in done.stderr
    meta = json.loads(next((project / "run" / "data").glob("*/meta.json")).read_text())
    assert meta["feature_names"] == ["f0", "f1"]
    assert meta["dropped_columns"] == [
        {"column": "symbol", "reason": "the symbol column (data.columns.symbol)"},
        {"column": "ts", "reason": "the time column (data.columns.time)"},
        {"column": "y", "reason": "a target of the campaign (campaign.targets)"},
        {"column": "sector", "reason": "not numeric (dtype object); encode it to use it"},
        {"column": "fwd_ret_15m", "reason": "a declared target (data.tasks), never a feature"},
    ]


def test_a_feature_that_leaks_the_target_stops_the_run(tmp_path):
    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    panel = project / "data" / "panel.csv"
    frame = pd.read_csv(panel)
    frame["y_next"] = 2 * frame["y"] + 0.01 * np.random.default_rng(3).standard_normal(len(frame))
    frame.to_csv(panel, index=False)
    assert tkplan("compile", "--hermetic", "-o", "plan.json", cwd=project, cache=cache).returncode == 0
    stopped = tkplan("run", "plan.json", "--out", "run", "-q", cwd=project, cache=cache)
    assert stopped.returncode == 6, stopped.stdout + stopped.stderr
    assert "feature 'y_next' has correlation +1.0000 with target 'y' on the train split, beyond " \
           "data.leakage_max_abs_corr = 0.98: it leaks the target" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not list((project / "run" / "steps").glob("*/outcome.json"))

    allowed = tkplan("compile", "--hermetic", "-o", "plan.json", "data.leakage_max_abs_corr=1", cwd=project,
                     cache=cache)
    assert allowed.returncode == 0
    assert tkplan("run", "plan.json", "--out", "run2", "-q", cwd=project, cache=cache).returncode == 0


def test_the_refusal_of_a_changed_data_file_names_the_file_and_both_digests(tmp_path):
    from tkplan import _compile_cache, execute
    from tkplan.errors import DataDriftError

    project = make_project(tmp_path / "project")
    panel = project / "data" / "panel.csv"
    request = CompileRequest(cwd=project, env={}, hermetic=True)
    plan = _compile_cache.compile_measured(request, MACHINE, "machine.yaml", "0.1.0")
    before = sha256(panel)
    write_panel(panel, seed=1)
    with pytest.raises(DataDriftError) as refused:
        execute(plan, tmp_path / "run", project_root=project)
    assert (refused.value.path, refused.value.expected, refused.value.actual) == (str(panel), before, sha256(panel))
