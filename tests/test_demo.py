"""The demo: compile the default campaign for this machine, run it, and rank the results."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_a_campaign_end_to_end_and_prints_the_leaderboard(tmp_path):
    """A small demo (two families, both target kinds) trains for real and ends with a ranked table per target."""
    cmd = [sys.executable, "-m", "tkplan.cli", "demo", "--out", "run", "-q",
           "campaign.families=[lightgbm, ftrl_proximal]", "families.lightgbm.n_estimators=80"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "4 steps: 4 ok" in out
    assert "fwd_ret_5m (regression, ranked by test rank_ic, mean ± sd over seeds)" in out
    assert "will_peak_5m (binary, ranked by test roc_auc, mean ± sd over seeds)" in out
    board = out.split("fwd_ret_5m (regression")[1]
    assert board.index("lightgbm") > 0 and "ftrl_proximal" in board
    assert out.rstrip().endswith("report: run/report.html")
    assert '<section id="timeline">' in (tmp_path / "run" / "report.html").read_text()

    report = subprocess.run([sys.executable, "-m", "tkplan.cli", "report", "run", "--format", "json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    entries = json.loads(report.stdout)
    assert {(e["target"], e["family"]) for e in entries} == {
        ("fwd_ret_5m", "lightgbm"), ("fwd_ret_5m", "ftrl_proximal"),
        ("will_peak_5m", "lightgbm"), ("will_peak_5m", "ftrl_proximal")}
    binary = [e for e in entries if e["target"] == "will_peak_5m"]
    assert binary[0]["score"] >= binary[1]["score"] > 0.5 and binary[0]["best"] and not binary[1]["best"]
    assert all(e["status"] == "ok" and e["n"] == 1 for e in entries)


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tkplan.cli", "report", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 5
    assert "is not a run directory (no plan.json)" in done.stderr
    assert "Traceback" not in done.stderr


def test_report_refuses_a_damaged_plan_with_a_message(tmp_path):
    (tmp_path / "plan.json").write_bytes(b"\xff\xfe")
    done = subprocess.run([sys.executable, "-m", "tkplan.cli", "report", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 5
    assert "plan.json: not a plan (not UTF-8 text, byte 0)" in done.stderr
    assert "Traceback" not in done.stderr
