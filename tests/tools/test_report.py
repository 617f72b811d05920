"""``tkplan report``: the leaderboard over seeds, the HTML report, the Markdown board and the Chrome trace of a
real small run (LightGBM and an MLP on two seeds, and a family of one's own that fails)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.runtime.projects import TKPLAN
from tests.tools.runs import FAMILIES, SEEDS
from tkplan.planner._convert import converter
from tkplan.runtime import Allowance, StepResult
from tkplan.tools.report import leaderboard, load_run, render_html, timeline, usage
from tkplan.tools.report._browser import chromium, load

pytestmark = pytest.mark.slow  # a real small run (tests.tools.runs)


def tkplan(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TKPLAN, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def scores_of(run_dir: Path, step_id: str) -> dict:
    return json.loads((run_dir / "steps" / step_id / "result.json").read_text())["metrics"]["test"]


class TestLeaderboard:
    def test_one_row_per_family_and_target_with_mean_sd_and_n_over_the_seeds(self, small_run):
        view = load_run(small_run)
        rows = leaderboard(view.plan, view.results)
        assert [r.family for r in rows][-1] == "broken" and {r.family for r in rows} == set(FAMILIES)
        for row in rows[:2]:
            scores = [scores_of(small_run, s)["rank_ic"] for s in row.step_ids]
            assert row.n == len(SEEDS) == len(scores)
            assert row.score == pytest.approx(statistics.fmean(scores))
            assert row.sd == pytest.approx(statistics.stdev(scores))
            assert row.status == "ok" and row.metric == "rank_ic"
        assert rows[0].score >= rows[1].score and [r.best for r in rows] == [True, False, False]
        broken = rows[2]
        assert (broken.score, broken.n, broken.status) == (None, 0, "2 failed")

    def test_the_table_marks_the_best_and_per_seed_shows_each_seed(self, small_run):
        board = tkplan("report", small_run)
        assert board.returncode == 0, board.stderr
        assert "fwd_ret_5m (regression, ranked by test rank_ic, mean ± sd over seeds)" in board.stdout
        first = board.stdout.splitlines()[3]
        assert first.startswith("1*") and " 2 " in first and " ± " in first
        per_seed = tkplan("report", small_run, "--per-seed", "--format", "json")
        rows = json.loads(per_seed.stdout)
        assert len(rows) == len(FAMILIES) * len(SEEDS) and all(len(r["seeds"]) == 1 for r in rows)
        assert sum(r["best"] for r in rows) == 1

    def test_markdown_is_a_table_per_target(self, small_run, tmp_path):
        done = tkplan("report", small_run, "--format", "md", "-o", tmp_path / "board.md")
        assert done.returncode == 0, done.stderr
        text = (tmp_path / "board.md").read_text()
        assert "## fwd_ret_5m (regression, ranked by test rank_ic, mean ± sd over seeds)" in text
        assert re.search(r"^\| 1 ★ \| \w+ \| 2 \| -?\d\.\d{4} ± \d\.\d{4} \|", text, re.MULTILINE)
        assert "| 3 | broken | 0 | – |" in text and "2 failed |" in text


class TestHtml:
    def test_one_self_contained_page_in_the_run_directory(self, small_run, tmp_path):
        run = shutil.copytree(small_run, tmp_path / "run")
        done = tkplan("report", run, "--format", "html")
        assert done.returncode == 0, done.stderr
        page = (run / "report.html").read_text()
        assert done.stdout.strip() == str(run / "report.html")
        for section in ("leaderboard", "timeline", "steps", "failures"):
            assert f'<section id="{section}">' in page
        assert page.count("<svg") == 1 and "<script" not in page
        assert not re.findall(r'(?:src|href)="(?!#)[^"]*"', page)  # loads nothing
        assert "ValueError: bad input in broken.fwd_ret_5m.s" in page
        assert 'class="best"' in page and "mean ± sd over seeds" in page

    def test_each_step_shows_its_thread_pools_next_to_the_plan_and_none_is_oversubscribed(self, small_run):
        view = load_run(small_run)
        for step in (s for s in view.plan.steps if s.family in ("lightgbm", "mlp")):
            used = usage(step, view.results[step.id])
            assert used.threads_allowed == step.resources.threads
            assert {"openmp", "openblas"} <= set(used.pools) and not used.oversubscribed
            assert used.threads_used == used.threads_allowed and used.os_threads >= 1

    def test_a_pool_larger_than_the_plan_is_flagged_an_inter_op_pool_is_not(self, small_run):
        view = load_run(small_run)
        step = view.plan.steps[0]

        def result(pools, applied):
            return StepResult(step.id, "ok", "", Allowance.of(step), pools=pools, applied=applied)

        threads = step.resources.threads
        over = usage(step, result([{"internal_api": "openmp", "num_threads": threads + 3}], {}))
        assert over.oversubscribed and over.threads_used == threads + 3
        inter = usage(step, result([], {"tf": {"intra_op_threads": threads, "inter_op_threads": threads + 1}}))
        assert not inter.oversubscribed and inter.pools["tf.inter_op_threads"] == threads + 1

    @pytest.mark.skipif(chromium() is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
    def test_chromium_shows_the_leaderboard_and_the_timeline_and_logs_no_error(self, small_run, tmp_path):
        html = tmp_path / "report.html"
        html.write_text(render_html(load_run(small_run)))
        page = load(html)
        assert page.console == ()
        assert '<section id="leaderboard">' in page.dom and "<table" in page.dom
        timeline_part = page.dom.split('<section id="timeline">')[1].split("</section>")[0]
        assert "<svg" in timeline_part and "slot 1" in timeline_part

    def test_a_sweep_and_a_study_get_their_sections(self, small_run, tmp_path):
        run = shutil.copytree(small_run, tmp_path / "run")
        view = load_run(run)
        seeds = {s.seed for s in view.plan.steps}
        by_seed = {seed: [s.id for s in view.plan.steps if s.seed == seed] for seed in seeds}
        (run / "sweep.json").write_text(json.dumps({
            "axes": {"seed": sorted(by_seed)},
            "points": [{"values": {"seed": seed}, "steps": ids} for seed, ids in sorted(by_seed.items())]}))
        (run / "study.json").write_text(json.dumps({
            "direction": "maximize", "metric": "rank_ic", "importances": {"num_leaves": 0.7, "learning_rate": 0.3},
            "trials": [{"number": i, "state": "COMPLETE", "value": v, "params": {"num_leaves": 8 * (i + 1)}}
                       for i, v in enumerate([0.1, 0.3, 0.2])]}))
        page = render_html(load_run(run))
        assert '<section id="sweep">' in page and '<section id="study">' in page
        assert page.count("<svg") == 4  # the timeline, the sweep, the history, the importances
        assert "best: trial 1, 0.3000" in page


class TestTrace:
    def test_the_timeline_as_chrome_trace_events(self, small_run, tmp_path):
        done = tkplan("report", small_run, "--trace", tmp_path / "trace.json")
        assert done.returncode == 0, done.stderr
        events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
        complete = [e for e in events if e["ph"] == "X"]
        view = load_run(small_run)
        assert sorted(e["name"] for e in complete) == sorted(view.plan.schedule.order)
        assert all(e["dur"] > 0 and e["ts"] >= 0 and e["args"]["status"] in ("ok", "failed") for e in complete)
        lanes = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
        assert lanes and lanes <= {f"slot {i}" for i in range(1, view.plan.schedule.max_parallel + 1)}

    def test_steps_on_one_lane_never_overlap(self, small_run):
        view = load_run(small_run)
        bars = timeline(view.plan, view.journal)
        for lane in {b.lane for b in bars}:
            on_lane = sorted((b for b in bars if b.lane == lane), key=lambda b: b.start)
            assert all(a.end <= b.start for a, b in itertools.pairwise(on_lane))


class TestRefusals:
    def test_an_unusable_output_path_is_a_bad_invocation(self, small_run, tmp_path):
        (tmp_path / "file").write_text("")
        done = tkplan("report", small_run, "--format", "html", "-o", tmp_path / "file" / "report.html")
        assert done.returncode == 2 and "Traceback" not in done.stderr

    def test_a_damaged_result_is_refused_with_a_message(self, small_run, tmp_path):
        run = shutil.copytree(small_run, tmp_path / "run")
        step = load_run(run).plan.schedule.order[0]
        (run / "steps" / step / "result.json").write_text("{")
        done = tkplan("report", run)
        assert done.returncode == 5
        assert f"steps/{step}/result.json: not a step result (damaged or truncated" in done.stderr
        assert "Traceback" not in done.stderr

    def test_results_round_trip(self, small_run):
        view = load_run(small_run)
        result = next(iter(view.results.values()))
        assert converter.structure(converter.unstructure(result), StepResult) == result
