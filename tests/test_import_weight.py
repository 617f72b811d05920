"""``tkplan compile`` loads no ML library: planning a campaign must not pay for (or depend on) torch & co."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "tensorflow", "lightgbm", "xgboost", "sklearn", "ngboost", "ray", "pandas", "scipy", "matplotlib",
         "jinja2", "mlflow", "rich")

SCRIPT = f"""
import json, sys
from tkplan.cli import main
args = json.loads(sys.argv[1])
try:
    main(args, standalone_mode=False)
except SystemExit as exc:
    if exc.code:
        raise
heavy = {HEAVY!r}
print("\\nLOADED=" + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def loaded_by(args: list[str], cwd: Path) -> list[str]:
    """Run ``tkplan ARGS`` in a fresh interpreter; return the heavy modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
    env["TKPLAN_CACHE_DIR"] = str(cwd / "cache")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "plan " in proc.stdout  # it did compile
    return json.loads(proc.stdout.rsplit("LOADED=", 1)[1])


@pytest.mark.parametrize("args", [
    pytest.param(["compile", "--hermetic", "--no-cache", "-o", "plan.json"], id="fresh"),
    pytest.param(["compile", "--hermetic", "h100_full", "--hardware", str(Path(__file__).parent / "specs" /
                  "h100_16core.yaml")], id="h100-spec"),
])
def test_compile_imports_no_ml_library(tmp_path, args):
    assert loaded_by(args, tmp_path) == []




PIPELINE = ("cattrs", "jsonschema", "tkplan.planner._compile")
"""What a compile answered from the cache must not load: the compile pipeline and its libraries."""


def test_a_compile_answered_from_the_cache_loads_no_compile_pipeline(tmp_path):
    spec = str(Path(__file__).parent / "specs" / "h100_16core.yaml")
    script = SCRIPT.replace("m.split(\".\")[0] in heavy", "m.startswith(heavy)").replace("heavy = ", "heavy = tuple(")
    script = script.replace(f"{HEAVY!r}\n", f"{HEAVY!r} + {PIPELINE!r})\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")} | {"TKPLAN_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script, json.dumps(["compile", "--hermetic", "--hardware", spec])],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120) for _ in range(2)]
    first, cached = (json.loads(run.stdout.rsplit("LOADED=", 1)[1]) for run in runs)
    assert "tkplan.planner._compile" in first  # the first compile ran the pipeline
    assert cached == []
