"""The ``tkplan`` package's public API: exactly the names README.md documents, each resolving, loaded lazily."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import tkplan
import tkplan._trainers
import tkplan.errors
import tkplan.planner
import tkplan.runtime
import tkplan.tools.audit

README = Path(__file__).resolve().parent.parent / "README.md"


def documented() -> list[str]:
    """The names listed in README.md's "Python API" section (its bullet lines)."""
    section = README.read_text(encoding="utf-8").split("### Python API", 1)[1].split("\n#", 1)[0]
    bullets = re.findall(r"^- (.*(?:\n  .*)*)", section, flags=re.MULTILINE)
    return sorted(name for bullet in bullets for name in re.findall(r"`(\w+)`", bullet.split(":", 1)[-1]))


def test_all_is_the_documented_list():
    assert sorted(tkplan.__all__) == documented()
    assert len(set(tkplan.__all__)) == len(tkplan.__all__)


def test_each_name_is_the_object_of_its_package():
    homes = (tkplan.planner, tkplan.runtime, tkplan.tools.audit, tkplan.errors,
             tkplan._trainers)  # execute: the runtime's, given the built-in families as the default trainer
    for name in tkplan.__all__:
        value = getattr(tkplan, name)
        if name != "__version__":
            assert any(getattr(home, name, None) is value for home in homes), name
    assert set(tkplan.__all__) <= set(dir(tkplan))
    assert issubclass(tkplan.PlanError, tkplan.TkplanError)


def test_an_unknown_name_is_an_attribute_error():
    try:
        tkplan.compile_everything  # noqa: B018
    except AttributeError as exc:
        assert "compile_everything" in str(exc)
    else:
        raise AssertionError("tkplan.compile_everything resolved")


def test_import_tkplan_loads_nothing_else():
    script = "import json, sys, tkplan; print(json.dumps(sorted(m for m in sys.modules if m.startswith('tkplan'))))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == ["tkplan", "tkplan._lazy"]


def test_a_plan_compiled_read_and_compared_through_the_api(tmp_path):
    request = tkplan.CompileRequest(words=("ci_fast", "run.threads=2"), cwd=tmp_path, hermetic=True)
    hardware = tkplan.load_hardware(Path(__file__).parent / "specs" / "h100_16core.yaml")
    plan = tkplan.compile_plan(request, hardware, "h100_16core.yaml", tkplan.__version__)
    (tmp_path / "plan.json").write_text(tkplan.plan_to_json(plan), encoding="utf-8")
    assert tkplan.read_plan(tmp_path / "plan.json") == plan
    assert tkplan.diff_plans(plan, plan) == []
