"""Plans and run directories edited by hand or damaged: each a clean exit 5 naming the file and what is wrong."""

from __future__ import annotations

import copy
import json
import os
import subprocess

import pytest

from tkplan.planner._plan import compute_hash

from .projects import compile_project, family, save_plan, write_project
from .test_unwatched import ENTRY


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A compiled plan of two ok steps, the second depending on the first, as JSON data."""
    directory = tmp_path_factory.mktemp("edited")
    project = write_project(directory / "project", {"first": family("ok")}, after={"second": family("ok")})
    return json.loads(save_plan(compile_project(project), directory / "plan.json").read_text())


def rehashed(data, path):
    """Write ``data`` as a plan whose hash matches its (edited) content: only the checks can refuse it."""
    data = copy.deepcopy(data)
    data["plan_hash"] = compute_hash(data)
    path.write_text(json.dumps(data, indent=1))
    return path


def tkplan(*args, cwd):
    return subprocess.run([*ENTRY, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def rename_step(data, old, new):
    for step in data["steps"]:
        step["id"] = new if step["id"] == old else step["id"]
        step["depends_on"] = [new if d == old else d for d in step["depends_on"]]
    data["schedule"]["order"] = [new if s == old else s for s in data["schedule"]["order"]]


def edit(name):
    """The edits a tester made, each with the words the refusal must contain."""
    def run_dir_escape(d):
        rename_step(d, d["steps"][0]["id"], "..")

    def absolute(d):
        rename_step(d, d["steps"][0]["id"], "/tmp/x")

    def empty(d):
        rename_step(d, d["steps"][0]["id"], "")

    def dot(d):
        rename_step(d, d["steps"][0]["id"], ".")

    def duplicate(d):
        rename_step(d, d["steps"][1]["id"], d["steps"][0]["id"])

    def cycle(d):
        d["steps"][0]["depends_on"] = [d["steps"][1]["id"]]

    def no_run_section(d):
        del d["config"]["run"]

    def integer_env(d):
        d["steps"][0]["env"]["OMP_NUM_THREADS"] = 4

    def shell_in_env_name(d):
        d["steps"][0]["env"]["X=1; touch pwned; Y"] = "1"

    def run_name(d):
        d["config"]["run"]["name"] = "../../elsewhere"

    return {
        "run_dir_escape": (run_dir_escape,
                           "'..' does not match '^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,199}$' @ $.steps[0].id"),
        "absolute": (absolute, "'/tmp/x' does not match"),
        "empty": (empty, "'' does not match"),
        "dot": (dot, "'.' does not match"),
        "duplicate": (duplicate, "is used twice"),
        "cycle": (cycle, "depend on each other in a cycle"),
        "no_run_section": (no_run_section, "config.run.name is missing"),
        "integer_env": (integer_env, "4 is not of type 'string' @ $.steps[0].env.OMP_NUM_THREADS"),
        "shell_in_env_name": (shell_in_env_name, "is not a shell identifier"),
        "run_name": (run_name, "@ $.config.run.name"),
    }[name]


EDITS = ["run_dir_escape", "absolute", "empty", "dot", "duplicate", "cycle", "no_run_section", "integer_env",
         "shell_in_env_name", "run_name"]


@pytest.mark.parametrize("name", EDITS)
def test_an_edited_and_rehashed_plan_is_refused_by_run_env_and_exec(compiled, tmp_path, name):
    change, words = edit(name)
    data = copy.deepcopy(compiled)
    change(data)
    plan = rehashed(data, tmp_path / "plan.json")
    step = data["steps"][0]["id"]
    for args in (["run", plan, "--out", tmp_path / "run"], ["env", plan, step], ["exec", plan, step, "--", "true"]):
        result = tkplan(*args, cwd=tmp_path)
        assert result.returncode == 5, (args, result.stderr)
        assert result.stderr.startswith(f"error: {plan}: invalid plan:")
        assert words in result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]  # nothing written anywhere


def test_env_values_are_quoted_so_a_shell_runs_nothing_in_them(compiled, tmp_path):
    data = copy.deepcopy(compiled)
    value = "$(touch pwned) `touch pwned` ' \" ; touch pwned"
    data["steps"][0]["env"]["NASTY"] = value
    plan = rehashed(data, tmp_path / "plan.json")
    shown = subprocess.run(["sh", "-c", f'eval "$({" ".join(ENTRY_SH)} env {plan} {data["steps"][0]["id"]})"; '
                            'printf %s "$NASTY"'], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == value
    assert not (tmp_path / "pwned").exists()


ENTRY_SH = [ENTRY[0], "-c", "'from tkplan._entry import run; run()'"]


@pytest.fixture()
def finished_run(compiled, tmp_path):
    plan = rehashed(compiled, tmp_path / "plan.json")
    result = tkplan("run", plan, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return plan, tmp_path / "run", compiled["steps"][0]["id"]


def test_a_truncated_result_is_named_by_report(finished_run, tmp_path):
    _, run_dir, step = finished_run
    result_file = run_dir / "steps" / step / "result.json"
    result_file.write_text(result_file.read_text()[:40])
    report = tkplan("report", run_dir, cwd=tmp_path)
    assert report.returncode == 5
    assert f"error: {result_file}: not a step result (damaged or truncated" in report.stderr


def test_a_directory_where_a_result_belongs_is_named_by_report(finished_run, tmp_path):
    _, run_dir, step = finished_run
    result_file = run_dir / "steps" / step / "result.json"
    result_file.unlink()
    result_file.mkdir()
    report = tkplan("report", run_dir, cwd=tmp_path)
    assert report.returncode == 5
    assert f"error: {result_file}: cannot read the step's result: Is a directory" in report.stderr


def test_a_step_finished_record_without_a_step_is_named_on_resume(finished_run, tmp_path):
    plan, run_dir, _ = finished_run
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    lines.insert(2, '{"event":"step_finished","status":"ok","time":1}\n')
    journal.write_text("".join(lines))
    resumed = tkplan("run", plan, "--out", run_dir, "--resume", cwd=tmp_path)
    assert resumed.returncode == 5
    assert f"error: {journal}:3: a step_finished record without a step" in resumed.stderr


def test_a_directory_where_the_journal_belongs_is_named_on_resume(finished_run, tmp_path):
    plan, run_dir, _ = finished_run
    (run_dir / "journal.jsonl").unlink()
    (run_dir / "journal.jsonl").mkdir()
    resumed = tkplan("run", plan, "--out", run_dir, "--resume", cwd=tmp_path)
    assert resumed.returncode == 5
    assert f"error: {run_dir / 'journal.jsonl'}: cannot read the journal: Is a directory" in resumed.stderr


def test_a_damaged_last_journal_record_is_dropped_on_resume(finished_run, tmp_path):
    """A crash can leave the last record cut short, or the disk can hand back zeros: it is dropped, not fatal."""
    plan, run_dir, _ = finished_run
    journal = run_dir / "journal.jsonl"
    with open(journal, "ab") as fh:
        fh.write(b"\0" * 40 + b"\n")
    resumed = tkplan("run", plan, "--out", run_dir, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert b"\0" not in journal.read_bytes()
    assert os.path.getsize(journal) > 0
