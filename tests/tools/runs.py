"""A real small run for the report and tracking tests: LightGBM and an MLP on the built-in panel, two seeds,
and a family of one's own that fails, run through the ``tkplan`` command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.runtime.projects import TKPLAN, family

FAMILIES = ("lightgbm", "mlp", "broken")
SEEDS = (1, 2)


def small_run(directory: Path) -> Path:
    """Compile and run the campaign in ``directory``; return its run directory (the run exits 1: a step fails)."""
    project = {
        "campaign": {"families": list(FAMILIES), "targets": ["fwd_ret_5m"], "seeds": list(SEEDS)},
        "families": {"lightgbm": {"n_estimators": 20}, "mlp": {"epochs": 3},
                     "broken": family("raise_error")},
        "env": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tkplan.yaml").write_text(json.dumps(project))
    run_dir = directory / "run"
    for args in (["compile", "ci_fast", "--hermetic", "--no-cache", "-o", "plan.json"],
                 ["run", "plan.json", "--out", str(run_dir), "-q"]):
        done = subprocess.run([*TKPLAN, *args], cwd=directory, capture_output=True, text=True, timeout=600)
        assert done.returncode in (0, 1), done.stderr
    assert (run_dir / "summary.json").is_file()
    return run_dir
