"""What a step's child sees and writes: the project's modules after the dependencies; JSON files without NaN."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .projects import compile_project, family, save_plan, write_project
from .test_unwatched import ENTRY

TRAINER = '''
import threadpoolctl


def fit(ctx):
    return {"metrics": {"score": 1.0}, "threadpoolctl": threadpoolctl.__file__}
'''


def strict_json(text):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("isolation", ["process", "inproc"])
def test_a_project_module_named_like_a_dependency_does_not_shadow_it(tmp_path, isolation):
    project = tmp_path / "project"
    fits = {**family("ok", isolation=isolation), "entrypoint": "mytrainer:fit"}
    write_project(project, {"fits": fits})
    (project / "threadpoolctl.py").write_text("raise ImportError('the project shadowed threadpoolctl')\n")
    (project / "mytrainer.py").write_text(TRAINER)  # the project's own trainer still imports
    plan_path = save_plan(compile_project(project), tmp_path / "plan.json")
    result = subprocess.run([*ENTRY, "run", str(plan_path), "--out", str(tmp_path / "run"), "--format", "json", "-q"],
                            cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (step,) = json.loads(result.stdout)["results"]
    assert step["status"] == "ok"  # the shadowing module raises on import: the step would have failed
    assert Path(step["output"]["threadpoolctl"]).parent != project


def test_non_finite_metrics_are_written_as_null_and_said_so(tmp_path):
    project = write_project(tmp_path / "project", {"nan": family("not_a_number")})
    plan = compile_project(project)
    run_dir = tmp_path / "run"
    result = subprocess.run([*ENTRY, "run", str(save_plan(plan, tmp_path / "plan.json")), "--out", str(run_dir)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    step_dir = run_dir / "steps" / plan.steps[0].id
    assert strict_json((step_dir / "metrics.json").read_text()) == {
        "test": {"rank_ic": None, "r2": 0.5, "ratio": None}}
    for name in ("result.json", "outcome.json"):
        strict_json((step_dir / name).read_text())
    strict_json((run_dir / "summary.json").read_text())
    detail = strict_json((step_dir / "result.json").read_text())["detail"]
    assert detail == "not a finite number, written as null: metrics.test.rank_ic, metrics.test.ratio, curve[1]"
    assert detail in result.stderr
