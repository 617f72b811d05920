"""Fuzzing edited plans: whatever a re-hashed edit does, ``run``, ``env``, ``exec`` and ``report`` end cleanly.

Each example edits one place of a real compiled plan (a value replaced by generated JSON, or a key dropped),
re-hashes it so that only the checks stand in the way, and drives the commands in this process through the
real command line (``exec`` runs ``true`` under the step's limits). Asserted: an exit code of
the documented set, no exception escaping, nothing written outside the run directory.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tkplan import cli
from tkplan.planner._plan import compute_hash

from .projects import compile_project, family, save_plan, write_project

DOCUMENTED = {0, 1, 2, 5, 6, 7}
NASTY = ["..", ".", "", "/abs", "../../x", "a/b", "$(touch pwned)", "a b", "-", "x" * 300, "\x00", "NaN"]


@pytest.fixture(scope="module")
def base_plan(tmp_path_factory):
    project = write_project(tmp_path_factory.mktemp("fuzz") / "project", {"works": family("ok")})
    return json.loads(save_plan(compile_project(project), project / "plan.json").read_text())


def places(data, path=()):
    """Every key path of ``data`` (lists by index), skipping the bulky config of families and provenance."""
    yield path
    if path in (("config", "families"), ("provenance",)):
        return
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield from places(value, (*path, key))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(NASTY) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NASTY) | st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)


def apply(data, path, value):
    data = copy.deepcopy(data)
    if not path:
        return value
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DROP and isinstance(node, dict):
        del node[path[-1]]
    elif value is not _DROP:
        node[path[-1]] = value
    data_hash = compute_hash(data) if isinstance(data, dict) and _hashable(data) else None
    if data_hash:
        data["plan_hash"] = data_hash
    return data


_DROP = object()


def _hashable(data):
    try:
        compute_hash(data)
    except (KeyError, TypeError, ValueError, RecursionError):
        return False
    return True


def files_under(directory):
    return {p.relative_to(directory).as_posix() for p in Path(directory).rglob("*")}


@settings(max_examples=int(os.environ.get("TKPLAN_FUZZ_EXAMPLES", "30")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_edited_plans_end_with_a_documented_exit_code_and_write_nowhere_else(base_plan, data, monkeypatch):
    paths = sorted(places(base_plan), key=lambda p: tuple(map(str, p)))
    path = data.draw(st.sampled_from(paths[1:]), label="path")
    value = data.draw(st.just(_DROP) | json_values, label="value")
    edited = apply(base_plan, path, value)
    step = str(edited["steps"][0].get("id", "x")) if isinstance(edited.get("steps"), list) and edited["steps"] \
        and isinstance(edited["steps"][0], dict) else "x"

    with tempfile.TemporaryDirectory() as sandbox:
        work = Path(sandbox) / "work"
        work.mkdir()
        (work / "plan.json").write_text(json.dumps(edited))
        monkeypatch.chdir(work)
        runner = CliRunner()
        codes = {}
        for args in (["run", "plan.json", "--out", "run", "-q"], ["env", "plan.json", step],
                     ["exec", "plan.json", step, "--", "true"], ["report", "run"]):
            result = runner.invoke(cli.main, args)
            assert result.exit_code in DOCUMENTED, (args, result.output, result.exception)
            assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
            assert "Traceback" not in result.output
            codes[args[0]] = result.exit_code
        # exec runs the command (`true`) exactly when the plan and step are sound; then it ends as the command did,
        # or as the step's limits ended it
        assert (codes["exec"] in (0, 124, 137)) == (codes["env"] == 0), codes
        written = files_under(sandbox)
        assert {p for p in written if not p.startswith("work/run/")} <= {"work", "work/plan.json", "work/run"}
        monkeypatch.chdir(sandbox)
