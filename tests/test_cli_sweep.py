"""``tkplan sweep`` from the command line: axes from overrides and from a profile, one plan per point.

Exit codes as for ``tkplan compile``: 0 ok, 3 an invalid axis or value (located), 4 a point the hardware
cannot honour.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tkplan.cli import main
from tkplan.planner import plan_from_json
from tkplan.planner._overrides import LEGACY_ENV
from tkplan.planner._plan import canonical_json

TESTS = Path(__file__).parent
SWEEPS = TESTS / "fixtures" / "profiles" / "sweep"
LAPTOP_SPEC = str(TESTS / "specs" / "laptop_2core.yaml")


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``tkplan`` in ``tmp_path`` (holding the sweep profiles) with none of the developer's environment."""
    for name in list(os.environ):
        if name.startswith("TKPLAN") or name in LEGACY_ENV:
            monkeypatch.delenv(name)
    shutil.copytree(SWEEPS, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, [*args, "--hardware", LAPTOP_SPEC],
                             env={"TKPLAN_CACHE_DIR": str(tmp_path / ".cache")}, catch_exceptions=False)

    return invoke


def sweep_file(cli, *words: str) -> dict:
    result = cli("sweep", *words, "-o", "sweep.json")
    assert result.exit_code == 0, result.output
    return json.loads(Path("sweep.json").read_text())


def test_a_grid_from_the_command_line_is_the_product_of_its_axes_first_axis_slowest(cli):
    data = sweep_file(cli, "ci_fast", "families.lightgbm.num_leaves=15,31", "run.base_seed=7,8,9")
    assert data["format"] == "tkplan.sweep/1"
    assert [(a["key"], a["values"], a["source"]) for a in data["axes"]] == [
        ("families.lightgbm.num_leaves", [15, 31], "cli:arg 2"), ("run.base_seed", [7, 8, 9], "cli:arg 3")]
    assert [p["overrides"] for p in data["points"]] == [
        [f"families.lightgbm.num_leaves={leaves}", f"run.base_seed={seed}"]
        for leaves in (15, 31) for seed in (7, 8, 9)]
    assert len({p["plan_hash"] for p in data["points"]}) == 6 == len(data["plans"])
    for point in data["points"]:
        plan = plan_from_json(json.dumps(data["plans"][point["plan_hash"]]))  # each plan's own hash checks
        leaves, seed = (int(o.split("=")[1]) for o in point["overrides"])
        assert plan.config["families"]["lightgbm"]["num_leaves"] == leaves
        assert plan.config["run"]["base_seed"] == seed
        assert plan.inputs.cli == ("ci_fast", *point["overrides"])
        assert plan.provenance["families.lightgbm.num_leaves"][-1]["source"] == \
            "sweep:families.lightgbm.num_leaves (cli:arg 2)"


def test_a_point_has_the_plan_that_compile_gives_for_its_overrides(cli):
    data = sweep_file(cli, "ci_fast", "families.lightgbm.num_leaves=15,31")
    compiled = cli("compile", "ci_fast", "families.lightgbm.num_leaves=31", "--format", "json")
    assert compiled.exit_code == 0, compiled.output
    assert data["points"][1]["plan_hash"] == json.loads(compiled.output)["plan_hash"]


def test_range_and_choice_sweep_values_that_a_comma_list_cannot_write(cli):
    data = sweep_file(cli, "ci_fast", "families.lightgbm.num_leaves=range(16,65,16)",
                      "campaign.targets=choice([fwd_ret_5m],[fwd_ret_5m,will_peak_5m])")
    assert data["axes"][0]["values"] == [16, 32, 48, 64]
    assert data["axes"][1]["values"] == [["fwd_ret_5m"], ["fwd_ret_5m", "will_peak_5m"]]
    assert len(data["points"]) == 8
    steps = [len(data["plans"][p["plan_hash"]]["steps"]) for p in data["points"]]
    assert steps[0] < steps[1] and steps[0::2] == [steps[0]] * 4 and steps[1::2] == [steps[1]] * 4


def test_the_ablation_profile_crosses_a_loss_weight_a_toggle_and_seeds(cli):
    data = sweep_file(cli, "ci_fast", "ablation.yaml")
    assert [(a["key"], a["values"], a["source"]) for a in data["axes"]] == [
        ("families.gan.adversarial_weight", [0.0, 0.05, 0.1], "ablation.yaml:7:5"),
        ("families.lstm.attention", [True, False], "ablation.yaml:8:5"),
        ("run.base_seed", [1, 2, 3], "ablation.yaml:9:3")]
    assert len(data["points"]) == 18 == len(data["plans"])
    first = data["plans"][data["points"][0]["plan_hash"]]
    assert "sweep" not in first["config"]
    assert {s["family"] for s in first["steps"]} == {"gan", "lstm"}
    gan = next(s for s in first["steps"] if s["family"] == "gan")
    assert gan["params"]["adversarial_weight"] == 0.0
    assert first["provenance"]["families.gan.adversarial_weight"][-1]["source"] == \
        "sweep:families.gan.adversarial_weight (ablation.yaml:7:5)"


def test_a_command_line_value_wins_over_the_profiles_axis(cli):
    data = sweep_file(cli, "ci_fast", "ablation.yaml", "families.lstm.attention=true")
    assert [a["key"] for a in data["axes"]] == ["families.gan.adversarial_weight", "run.base_seed"]
    assert len(data["points"]) == 9


def test_a_list_of_points_sets_only_the_keys_each_names(cli):
    data = sweep_file(cli, "ci_fast", "points.yaml", "run.base_seed=1,2")
    assert [p["overrides"] for p in data["points"]] == [
        ["families.lightgbm.num_leaves=15", "families.lightgbm.learning_rate=0.1", "run.base_seed=1"],
        ["families.lightgbm.num_leaves=15", "families.lightgbm.learning_rate=0.1", "run.base_seed=2"],
        ["families.lightgbm.num_leaves=63", "run.base_seed=1"],
        ["families.lightgbm.num_leaves=63", "run.base_seed=2"]]


def test_a_bad_axis_value_is_located_once_with_exit_3(cli):
    result = cli("sweep", "ci_fast", "families.lightgbm.num_leaves=15,1,31", "run.base_seed=1,2")
    assert result.exit_code == 3
    assert result.output.count("must be ≥ 2; got 1") == 1
    assert "sweep:families.lightgbm.num_leaves (cli:arg 2): must be ≥ 2; got 1 @ families.lightgbm.num_leaves" \
        in result.output
    assert "Traceback" not in result.output
    assert not Path("sweep.json").exists()


def test_a_bad_value_in_a_profiles_grid_is_located_at_its_line(cli):
    result = cli("sweep", "ci_fast", "bad_weight.yaml")
    assert result.exit_code == 3
    assert "sweep:families.gan.adversarial_weight (bad_weight.yaml:3:5)" in result.output
    assert "got -0.5" in result.output


def test_an_unknown_swept_key_gets_a_did_you_mean(cli):
    result = cli("sweep", "ci_fast", "families.lightgbm.num_leafs=15,31")
    assert result.exit_code == 3
    assert "did you mean 'num_leaves'?" in result.output


def test_a_grid_and_a_list_of_points_together_are_refused(cli):
    result = cli("sweep", "ci_fast", "both.yaml")
    assert result.exit_code == 3
    assert "a sweep has a grid or a list of points, not both" in result.output
    assert "both.yaml:4:3" in result.output


def test_compile_still_refuses_a_sweep_value(cli):
    result = cli("compile", "ci_fast", "families.lightgbm.num_leaves=15,31")
    assert result.exit_code == 3
    assert "`tkplan compile` takes one value per key" in result.output


def test_the_same_sweep_twice_gives_the_same_bytes_and_hash(cli):
    first = cli("sweep", "ci_fast", "ablation.yaml", "-o", "a.json")
    second = cli("sweep", "ci_fast", "ablation.yaml", "-o", "b.json")
    assert first.exit_code == second.exit_code == 0
    assert Path("a.json").read_bytes() == Path("b.json").read_bytes()
    data = json.loads(Path("a.json").read_text())
    assert Path("a.json").read_text() == canonical_json(data) + "\n"
    assert f"sweep written to a.json (sweep_hash {data['sweep_hash']})" in first.output
    assert first.output.replace("a.json", "b.json") == second.output


def test_the_summary_has_one_line_per_point_with_its_value_on_each_axis(cli):
    result = cli("sweep", "ci_fast", "families.lightgbm.num_leaves=15,31", "run.base_seed=1,2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("sweep ") and "(4 points × 14 steps = 56 steps, 4 distinct plans" in lines[0]
    assert lines[1] == "hardware: 2 usable CPUs of 2, 16384 MB memory, GPUs: none"
    assert lines[2] == "layers: base → ci_fast (+20 family profiles)"
    assert lines[4] == "axes: families.lightgbm.num_leaves (2 from cli:arg 2); run.base_seed (2 from cli:arg 3)"
    assert lines[6].split() == ["point", "num_leaves", "base_seed", "steps", "plan"]
    data = json.loads(cli("sweep", "ci_fast", "families.lightgbm.num_leaves=15,31", "run.base_seed=1,2",
                          "--format", "json").output)
    end = lines.index("", 8)  # the table, then the expected total (the forecast) after a blank line
    assert lines[end + 1].startswith("expected total")
    assert [line.split() for line in lines[8:end]] == [
        [str(i), leaves, seed, "14", point["plan_hash"][:12]]
        for i, ((leaves, seed), point) in enumerate(zip([("15", "1"), ("15", "2"), ("31", "1"), ("31", "2")],
                                                        data["points"], strict=True))]


def test_a_long_sweeps_summary_shows_its_first_and_last_points_and_counts_the_rest(cli):
    result = cli("sweep", "ci_fast", "points.yaml", "run.base_seed=range(1,51)")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("point "))):]
    table = table[:table.index("")]  # the expected total follows the table
    assert table[0].split() == ["point", "points", "base_seed", "steps", "plan"]
    assert [line.split()[0] for line in table[2:12]] == [str(i) for i in range(10)]
    assert table[12] == "… 80 more points …"
    assert [line.split()[0] for line in table[13:]] == [str(i) for i in range(90, 100)]
    assert table[2].split()[:5] == ["0", "num_leaves=15", "learning_rate=0.1", "1", "14"]
    assert table[-1].split()[:4] == ["99", "num_leaves=63", "50", "14"]


def test_a_sweep_over_a_csv_source_measures_each_file_as_compile_does(tmp_path: Path):
    """A file data source plans as for ``tkplan compile``: each point's plan records the file it reads, by size
    and sha256, and has the hash compile gives; a swept file that is not there is refused with exit 6."""
    from tests.test_cli_data import make_project, sha256, tkplan, write_panel

    cache = tmp_path / "cache"
    project = make_project(tmp_path / "project")
    write_panel(project / "data" / "other.csv", seed=1)
    done = tkplan("sweep", "--hermetic", "-o", "sweep.json", "data.source=data/panel.csv,data/other.csv",
                  "families.ftrl_proximal.learning_rate=0.05,0.1", cwd=project, cache=cache)
    assert done.returncode == 0, done.stderr
    data = json.loads((project / "sweep.json").read_text())
    assert len(data["points"]) == 4 == len(data["plans"])
    for point in data["points"]:
        plan = data["plans"][point["plan_hash"]]
        source = point["overrides"][0].removeprefix("data.source=")
        assert plan["data"] == {"source": source, "size": (project / source).stat().st_size,
                                "sha256": sha256(project / source), "generator": {}}
        compiled = tkplan("compile", "--hermetic", "--format", "json", *point["overrides"], cwd=project, cache=cache)
        assert json.loads(compiled.stdout)["plan_hash"] == point["plan_hash"]
    missing = tkplan("sweep", "--hermetic", "data.source=data/panel.csv,data/nowhere.csv", cwd=project, cache=cache)
    assert missing.returncode == 6
    assert f"data.source: no file {project / 'data' / 'nowhere.csv'}" in missing.stderr
    assert "Traceback" not in missing.stderr
