"""``tkplan run sweep.json``: a sweep's one schedule, each step its points share run once, resumable, extendable.

Real child processes through the real command line: the projects' families are the executor tests' own
trainers (``tests.runtime.trainers:count`` sleeps, then appends its step id to ``RUN_DIR/counts.txt``), and one
sweep trains LightGBM and FTRL on ``ci_fast``'s tiny panel.
"""

from __future__ import annotations

import collections
import json
import subprocess
from pathlib import Path

import pytest

from tkplan.runtime import read_journal

from .runtime.projects import TKPLAN, family, write_project
from .runtime.test_resume import wait_for


def tkplan(cwd: Path, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TKPLAN, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def sweep(cwd: Path, name: str, *words: str) -> Path:
    done = tkplan(cwd, "sweep", "--hermetic", *words, "-o", name)
    assert done.returncode == 0, done.stderr
    return cwd / name


def journal(run_dir: Path) -> list[dict]:
    return read_journal(run_dir / "journal.jsonl")


def started(run_dir: Path) -> collections.Counter[str]:
    return collections.Counter(r["step"] for r in journal(run_dir) if r["event"] == "step_started")


def counts(run_dir: Path) -> collections.Counter[str]:
    return collections.Counter((run_dir / "counts.txt").read_text().split())


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """Two families of counting steps: ``a`` is swept (its ``sleep_s``), ``b`` is the same at every point."""
    return write_project(tmp_path / "project", {"a": family("count", sleep_s=0.2), "b": family("count", sleep_s=0.2)},
                         seeds=(1, 2))


class TestSharedSteps:
    def test_a_step_the_points_share_runs_once_and_each_reuse_is_recorded(self, project):
        sweep_path = sweep(project, "sweep.json", "families.a.sleep_s=0.1,0.2,0.3")
        data = json.loads(sweep_path.read_text())
        union = data["schedule"]["plan"]
        assert sum(len(data["plans"][p["plan_hash"]]["steps"]) for p in data["points"]) == 12
        assert len(union["steps"]) == 8  # a: 3 values × 2 seeds; b: 2 seeds, shared by the three points

        done = tkplan(project, "run", sweep_path, "--out", "run")
        assert done.returncode == 0, done.stderr
        run = project / "run"
        b_steps = {s["id"] for s in union["steps"] if s["family"] == "b"}
        assert started(run) == collections.Counter(s["id"] for s in union["steps"])
        assert counts(run) == collections.Counter(s["id"] for s in union["steps"])  # each trained once

        record = json.loads((run / "sweep.json").read_text())
        assert record["shared"] == {step: [0, 1, 2] for step in b_steps}
        assert [p["values"] for p in record["points"]] == [{"families.a.sleep_s": v} for v in (0.1, 0.2, 0.3)]
        assert [p["shared"] for p in record["points"]] == [{}, dict.fromkeys(b_steps, 0), dict.fromkeys(b_steps, 0)]
        assert all(len(p["steps"]) == 4 for p in record["points"])
        sweep_started = [r for r in journal(run) if r["event"] == "sweep_started"]
        assert [(r["sweep_hash"], r["points"], r["shared"], r["reused"]) for r in sweep_started] == [
            (data["sweep_hash"], 3, record["shared"], [])]
        assert "families.a.sleep_s" in done.stdout  # the ablation leaderboard ends the run

        again = tkplan(project, "run", sweep_path, "--out", "run")
        assert again.returncode == 0, again.stderr
        assert "finished already" in again.stderr
        assert started(run) == collections.Counter(s["id"] for s in union["steps"])

    def test_the_default_run_directory_names_the_sweep(self, project):
        sweep_path = sweep(project, "sweep.json", "families.a.sleep_s=0.1,0.2")
        sweep_hash = json.loads(sweep_path.read_text())["sweep_hash"]
        done = tkplan(project, "run", sweep_path, "-q")
        assert done.returncode == 0, done.stderr
        assert (project / "runs" / f"test-sweep-{sweep_hash[:12]}" / "sweep.json").is_file()


class TestResume:
    def test_sigkill_mid_sweep_then_resume_finishes_every_point_ok_exactly_once(self, tmp_path):
        project = write_project(tmp_path / "project", {"a": family("count", sleep_s=0.5),
                                                       "b": family("count", sleep_s=0.5)}, seeds=(1, 2, 3))
        sweep_path = sweep(project, "sweep.json", "families.a.sleep_s=0.4,0.5")
        run = project / "run"
        executor = subprocess.Popen([*TKPLAN, "run", str(sweep_path), "--out", str(run), "-q"], cwd=project,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        def mid_step() -> bool:
            ended = {r["step"] for r in journal(run) if r["event"] == "step_finished"}
            return len(ended) >= 2 and bool(set(started(run)) - ended)

        wait_for(mid_step)
        executor.kill()
        executor.wait()
        done_before = {r["step"] for r in journal(run) if r["event"] == "step_finished"}
        records_before = len(journal(run))
        interrupted = set(started(run)) - done_before
        assert interrupted, "the kill was meant to land while a step ran"

        plain = tkplan(project, "run", sweep_path, "--out", run)
        assert plain.returncode == 5 and "--resume" in plain.stderr
        resumed = tkplan(project, "run", sweep_path, "--out", run, "--resume", "--format", "json")
        assert resumed.returncode == 0, resumed.stderr

        union = [s["id"] for s in json.loads(sweep_path.read_text())["schedule"]["plan"]["steps"]]
        ends = collections.Counter(r["step"] for r in journal(run) if r["event"] == "step_finished")
        assert ends == collections.Counter(union)
        assert all(n == 1 for step, n in counts(run).items() if step not in interrupted)
        assert set(counts(run)) == set(union)
        again = {r["step"] for r in journal(run)[records_before:] if r["event"] == "step_started"}
        assert not again & done_before, "a finished step was started again"
        record = json.loads((run / "sweep.json").read_text())
        results = {r["step_id"]: r["status"] for r in json.loads(resumed.stdout)["summary"]["results"]}
        assert all(results[step] == "ok" for point in record["points"] for step in point["steps"])


class TestExtension:
    def test_a_sweep_with_more_values_runs_only_its_new_steps_into_the_same_directory(self, project):
        first = sweep(project, "first.json", "families.a.sleep_s=0.1,0.2")
        assert tkplan(project, "run", first, "--out", "run", "-q").returncode == 0
        run = project / "run"
        before = set(started(run))

        wider = sweep(project, "wider.json", "families.a.sleep_s=0.1,0.2,0.3")
        done = tkplan(project, "run", wider, "--out", run)
        assert done.returncode == 0, done.stderr
        union = {s["id"] for s in json.loads(wider.read_text())["schedule"]["plan"]["steps"]}
        new = union - before
        assert len(new) == 2 and before < union  # a at 0.3, for two seeds
        assert started(run) == collections.Counter(union)  # nothing started twice
        assert counts(run) == collections.Counter(union)
        record = json.loads((run / "sweep.json").read_text())
        assert record["reused"] == sorted(before)
        assert record["history"] == [json.loads(first.read_text())["sweep_hash"], record["sweep_hash"]]
        extends = [r for r in journal(run) if r["event"] == "run_started"][-1]["extends"]
        assert extends == json.loads(first.read_text())["schedule"]["plan"]["plan_hash"]
        assert json.loads((run / "plan.json").read_text())["plan_hash"] == json.loads(wider.read_text())[
            "schedule"]["plan"]["plan_hash"]

    def test_extending_an_interrupted_sweep_needs_resume_and_then_runs_every_step_once(self, project):
        first = sweep(project, "first.json", "families.a.sleep_s=0.4,0.5")
        run = project / "run"
        executor = subprocess.Popen([*TKPLAN, "run", str(first), "--out", str(run), "-q"], cwd=project,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        wait_for(lambda: any(r["event"] == "step_finished" for r in journal(run)))
        executor.kill()
        executor.wait()

        wider = sweep(project, "wider.json", "families.a.sleep_s=0.4,0.5,0.6")
        plain = tkplan(project, "run", wider, "--out", run)
        assert plain.returncode == 5 and "unfinished run of an earlier sweep; pass --resume" in plain.stderr
        resumed = tkplan(project, "run", wider, "--out", run, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        union = [s["id"] for s in json.loads(wider.read_text())["schedule"]["plan"]["steps"]]
        ends = collections.Counter(r["step"] for r in journal(run) if r["event"] == "step_finished")
        assert ends == collections.Counter(union)
        assert set(counts(run)) == set(union)

    def test_a_sweep_that_does_not_extend_the_directory_s_is_refused(self, project):
        assert tkplan(project, "run", sweep(project, "first.json", "families.a.sleep_s=0.1,0.2"), "--out", "run",
                      "-q").returncode == 0
        plan_before, journal_before = (project / "run" / "plan.json").read_text(), journal(project / "run")
        other = tkplan(project, "run", sweep(project, "other.json", "families.a.sleep_s=0.3"), "--out", "run")
        assert other.returncode == 5
        assert "does not extend" in other.stderr and "Traceback" not in other.stderr
        assert (project / "run" / "plan.json").read_text() == plan_before and journal(project / "run") == journal_before

    def test_a_plan_s_run_directory_refuses_a_sweep_and_a_sweep_s_refuses_a_plan(self, project):
        assert tkplan(project, "compile", "--hermetic", "-o", "plan.json").returncode == 0
        assert tkplan(project, "run", "plan.json", "--out", "plan-run", "-q").returncode == 0
        into_plan = tkplan(project, "run", sweep(project, "s.json", "families.a.sleep_s=0.1,0.2"), "--out",
                           "plan-run")
        assert into_plan.returncode == 5 and "not of a sweep" in into_plan.stderr
        assert tkplan(project, "run", "s.json", "--out", "sweep-run", "-q").returncode == 0
        into_sweep = tkplan(project, "run", "plan.json", "--out", "sweep-run")
        assert into_sweep.returncode == 5 and "holds the run of another plan" in into_sweep.stderr


class TestEditedSweepFile:
    @pytest.mark.parametrize(("edit", "message"), [
        (lambda d: d["plans"][d["points"][0]["plan_hash"]]["steps"][0]["params"].update(sleep_s=9.0),
         "plan_hash does not match its content"),
        (lambda d: d["schedule"]["steps"][0].update(points=[0, 1]), "the schedule is not the one its plans give"),
        (lambda d: d["points"].reverse(), "sweep_hash does not match"),
    ], ids=["a point's plan", "the schedule", "the points"])
    def test_a_sweep_file_edited_after_compiling_is_refused(self, project, edit, message):
        sweep_path = sweep(project, "sweep.json", "families.a.sleep_s=0.1,0.2")
        data = json.loads(sweep_path.read_text())
        edit(data)
        sweep_path.write_text(json.dumps(data))
        done = tkplan(project, "run", sweep_path, "--out", "run")
        assert done.returncode == 5
        assert message in done.stderr and "compile the sweep again" in done.stderr
        assert "Traceback" not in done.stderr
        assert not (project / "run").exists()


def test_a_lightgbm_sweep_shares_the_other_family_and_ends_with_the_markdown_leaderboard(tmp_path):
    words = ["ci_fast", "campaign.families=[lightgbm,ftrl_proximal]", "campaign.targets=[fwd_ret_5m]",
             "campaign.seeds=[1,2]", "families.lightgbm.num_leaves=4,15"]
    sweep_path = sweep(tmp_path, "sweep.json", *words)
    done = tkplan(tmp_path, "run", sweep_path, "--out", "run", "-q")
    assert done.returncode == 0, done.stderr
    run = tmp_path / "run"
    assert sorted(s.rsplit(".", 1)[0] for s in started(run)) == [
        "ftrl_proximal.fwd_ret_5m.s1", "ftrl_proximal.fwd_ret_5m.s2", "lightgbm.fwd_ret_5m.s1",
        "lightgbm.fwd_ret_5m.s1", "lightgbm.fwd_ret_5m.s2", "lightgbm.fwd_ret_5m.s2"]

    md = tkplan(tmp_path, "report", run, "--format", "md")
    assert md.returncode == 0, md.stderr
    lines = md.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| # |"))
    assert header == ("| # | family | families.lightgbm.num_leaves | n | rank_ic | r2 | rmse | mae | status |")
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert sorted((r[1], r[2], r[3], r[-1]) for r in rows) == [
        ("ftrl_proximal", "*", "2", "ok |"), ("lightgbm", "15", "2", "ok |"), ("lightgbm", "4", "2", "ok |")]
    assert all(" ± " in r[4] for r in rows)  # two seeds: mean ± sd
    assert rows[0][0].endswith("★")

    html = tkplan(tmp_path, "report", run, "--format", "html", "-o", tmp_path / "report.html")
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "report.html").read_text()
    sweep_part = page.split('<section id="sweep">')[1].split("</section>")[0]
    assert "<svg" in sweep_part and "Ablation leaderboard" in sweep_part
    assert "<th>families.lightgbm.num_leaves</th>" in sweep_part
