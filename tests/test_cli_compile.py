"""``tkplan compile``, ``validate`` and ``explain`` from the command line: what a user sees, and the exit codes.

Exit codes: 0 ok, 2 bad invocation, 3 invalid configuration, 4 a plan the hardware cannot honour (or a bad
hardware spec). Bad input never shows a traceback: one ``error:`` message naming where the bad value came from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tkplan.planner import plan_from_json
from tkplan.planner._plan import canonical_json

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures" / "profiles"
LAPTOP_SPEC = str(TESTS / "specs" / "laptop_2core.yaml")
STEP_FIELDS = {"id", "family", "target", "targets", "task", "seed", "params", "entrypoint", "resources", "env",
               "isolation", "limits", "derivations", "depends_on", "data", "digest"}



@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The fixture project (tkplan.yaml, shared/ layers, profiles/ with a family of its own) as the working
    directory."""
    shutil.copytree(FIXTURES / "project", tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.fixture()
def bad(tmp_path: Path) -> Path:
    """A working directory holding a copy of every bad fixture profile."""
    shutil.copytree(FIXTURES / "bad", tmp_path, dirs_exist_ok=True)
    return tmp_path


def collapse(output: str) -> list[str]:
    return [re.sub(r"\s+", " ", line).strip() for line in output.splitlines()]


class TestCompile:
    def test_prints_a_summary_and_writes_the_plan(self, cli, project):
        result = cli("compile", "--hermetic", "--hardware", LAPTOP_SPEC, "-o", "plan.json")
        assert result.exit_code == 0, result.output
        plan = plan_from_json((project / "plan.json").read_text())
        lines = collapse(result.stdout)
        assert lines[:4] == [
            f"plan {plan.plan_hash[:12]} (8 steps, format tkplan.plan/1)",
            "hardware: 2 usable CPUs of 2, 16384 MB memory, GPUs: none",
            "layers: base → laptop → shared/common.yaml → shared/left.yaml → shared/right.yaml → shared/team.yaml "
            "→ project (+21 family profiles)",
            "thread budget 2, up to 2 steps at once",
        ]
        assert lines[4].split() == ["step", "task", "threads", "device", "prec", "isolation", "timeout", "mem", "MB",
                                    "vram", "MB", "batch", "seed", "after"]
        rows = {line.split()[0]: line.split() for line in lines[6:14]}
        assert sorted(rows) == sorted(step.id for step in plan.steps)
        lightgbm = plan.step("lightgbm.fwd_ret_5m.s1")
        assert rows["lightgbm.fwd_ret_5m.s1"][:7] == ["lightgbm.fwd_ret_5m.s1", "regression", "1", "cpu", "fp32",
                                                      "process", "600s"]
        assert rows["lightgbm.fwd_ret_5m.s1"][9:11] == ["-", str(lightgbm.seed)]  # no batch size: not a network
        assert lines[-1] == f"plan written to plan.json (plan_hash {plan.plan_hash})"
        assert result.stderr == ""

    def test_the_plan_file_is_canonical_json_with_every_section(self, cli, project):
        assert cli("compile", "--hermetic", "--hardware", LAPTOP_SPEC, "-o", "plan.json").exit_code == 0
        text = (project / "plan.json").read_text()
        data = json.loads(text)
        assert text == canonical_json(data, indent=1) + "\n"
        assert set(data) == {"format", "plan_hash", "inputs", "hardware", "data", "config", "provenance", "steps",
                             "schedule"}
        assert data["format"] == "tkplan.plan/1"
        assert re.fullmatch(r"[0-9a-f]{64}", data["plan_hash"])
        assert data["inputs"]["cli"] == []
        assert data["inputs"]["env"] == {}
        assert data["inputs"]["hardware_source"] == "laptop_2core.yaml"
        assert data["config"]["families"]["lightgbm"]["num_leaves"] == 48
        assert data["provenance"]["families.lightgbm.num_leaves"][-1] == {
            "source": "project", "file": "tkplan.yaml", "line": 11, "col": 5, "value": 48}
        for step in data["steps"]:
            assert set(step) == STEP_FIELDS
        step = next(s for s in data["steps"] if s["id"] == "lightgbm.fwd_ret_5m.s2")
        assert (step["family"], step["target"], step["targets"], step["task"]) == (
            "lightgbm", "fwd_ret_5m", ["fwd_ret_5m"], "regression")
        assert step["params"]["num_leaves"] == 48 and step["params"]["learning_rate"] == 0.05
        assert "runtime" not in step["params"]

    def test_format_json_prints_the_plan_itself(self, cli, project):
        result = cli("compile", "--hermetic", "--hardware", LAPTOP_SPEC, "--format", "json", "-o", "plan.json")
        assert result.exit_code == 0, result.output
        assert result.stdout == (project / "plan.json").read_text()

    def test_profiles_and_overrides_on_the_command_line(self, cli, tmp_path):
        result = cli("compile", "ci_fast", "campaign.families=[lightgbm]", "--set", "campaign.seeds=[1, 2]",
                     "--hermetic", "--hardware", LAPTOP_SPEC, "--format", "json")
        assert result.exit_code == 0, result.output
        plan = json.loads(result.stdout)
        assert [s["id"] for s in plan["steps"]] == [
            "lightgbm.fwd_ret_5m.s1", "lightgbm.will_peak_5m.s1", "lightgbm.fwd_ret_5m.s2", "lightgbm.will_peak_5m.s2"]
        assert plan["steps"][0]["params"]["n_estimators"] == 50
        assert plan["inputs"]["cli"] == ["ci_fast", "campaign.families=[lightgbm]", "--set=campaign.seeds=[1, 2]"]

    def test_a_damaged_cache_entry_is_compiled_again(self, cli, project):
        """The compile cache is only a cache: an entry cut short or edited is ignored, never trusted or fatal."""
        first = cli("compile", "--hardware", LAPTOP_SPEC, "-o", "plan.json")
        (entry,) = (project / ".cache").glob("*.json")
        for damaged in ('{"files": 3}', "[]", entry.read_text()[:100], "\udcff"):
            entry.write_text(damaged, errors="surrogateescape")
            again = cli("compile", "--hardware", LAPTOP_SPEC, "-o", "plan.json")
            assert (again.exit_code, again.stdout) == (0, first.stdout)
        assert plan_from_json((project / "plan.json").read_text()).plan_hash in first.stdout

    def test_compiling_twice_gives_the_same_bytes(self, cli, project):
        first = cli("compile", "--hermetic", "--hardware", LAPTOP_SPEC, "-o", "a.json")
        again = cli("compile", "--hermetic", "--hardware", LAPTOP_SPEC, "-o", "b.json", "--no-cache")
        assert first.exit_code == again.exit_code == 0
        assert (project / "a.json").read_bytes() == (project / "b.json").read_bytes()

    def test_a_project_file_created_after_a_compile_is_seen(self, cli, tmp_path):
        """The compile cache never answers with a stale plan: a new tkplan.yaml changes the plan."""
        before = cli("compile", "--hermetic", "--hardware", LAPTOP_SPEC, "--format", "json")
        (tmp_path / "tkplan.yaml").write_text("campaign:\n  families: [lightgbm]\n")
        after = cli("compile", "--hermetic", "--hardware", LAPTOP_SPEC, "--format", "json")
        assert before.exit_code == after.exit_code == 0
        assert {s["family"] for s in json.loads(after.stdout)["steps"]} == {"lightgbm"}

    def test_a_plan_the_hardware_cannot_honour_exits_4(self, cli):
        result = cli("compile", "h100_full", "--hermetic", "--hardware", LAPTOP_SPEC)
        assert result.exit_code == 4
        assert result.stderr.startswith("error: the plan cannot be honoured on this hardware:\n"
                                        "  - tkplan:profiles/machines/h100_full.yaml:")
        assert "requires a CUDA GPU" in result.stderr


class TestValidate:
    def test_names_the_layers_and_counts_the_steps(self, cli, project):
        result = cli("validate", "--hermetic")
        assert (result.exit_code, result.stdout) == (0, "valid: base → laptop → shared/common.yaml → shared/left.yaml"
                                                        " → shared/right.yaml → shared/team.yaml → project; 8 steps\n")

    def test_validates_named_profiles(self, cli):
        result = cli("validate", "kaggle_safe", "--hermetic")
        assert (result.exit_code, result.stdout) == (0, "valid: base → kaggle_safe; 35 steps\n")


class TestExplain:
    def test_prints_every_layer_that_set_the_key_the_winner_marked(self, cli, project):
        result = cli("explain", "data.lookback", "--hermetic", "--hardware", LAPTOP_SPEC)
        assert result.exit_code == 0, result.output
        lines = collapse(result.stdout)
        assert lines[0] == "data.lookback = 48"
        assert re.fullmatch(r"tkplan:profiles/base\.yaml:\d+:\d+ base 64 \(overridden\)", lines[1])
        assert lines[2:] == [
            "shared/common.yaml:4:3 shared/common.yaml 16 (overridden)",
            "shared/left.yaml:3:3 shared/left.yaml 32 (overridden)",
            "* shared/right.yaml:3:3 shared/right.yaml 48",
        ]

    def test_env_and_command_line_entries(self, cli, project):
        result = cli("explain", "families.lightgbm.num_leaves", "families.lightgbm.num_leaves=80",
                     env={"TKPLAN__families__lightgbm__num_leaves": "64"})
        assert result.exit_code == 0, result.output
        lines = collapse(result.stdout)
        assert lines[0] == "families.lightgbm.num_leaves = 80"
        assert re.fullmatch(r"tkplan:profiles/families/lightgbm\.yaml:\d+:\d+ families/lightgbm 96 \(overridden\)",
                            lines[1])
        assert lines[2:] == [
            "tkplan.yaml:11:5 project 48 (overridden)",
            "env:TKPLAN__families__lightgbm__num_leaves 64 (overridden)",
            "* cli:arg 1 80",
        ]

    def test_a_prefix_explains_every_key_under_it(self, cli, project):
        result = cli("explain", "data.splits", "--hermetic")
        assert result.exit_code == 0, result.output
        assert [line for line in collapse(result.stdout) if "=" in line] == [
            "data.splits.purge_gap = 17", "data.splits.test_ratio = 0.15", "data.splits.val_ratio = 0.15"]

    def test_an_unknown_key_suggests_the_nearest(self, cli):
        result = cli("explain", "families.lightgbm.num_leave", "--hermetic")
        assert result.exit_code == 3
        assert result.stderr == ("error: no such key: families.lightgbm.num_leave "
                                 "(did you mean 'families.lightgbm.num_leaves'?)\n")


BAD_INPUT = [
    pytest.param(["malformed.yaml"], {}, "malformed.yaml:3:5: malformed YAML: while parsing a flow sequence (opened "
                 "at line 2, column 9) did not find expected ',' or ']'", id="malformed-yaml"),
    pytest.param(["wrong_type.yaml"], {}, "wrong_type.yaml:3:5: expected an integer, got a string 'many' @ "
                 "families.lightgbm.num_leaves", id="wrong-type"),
    pytest.param(["out_of_range.yaml"], {}, "out_of_range.yaml:3:5: must be < 1; got 1.5 @ data.splits.val_ratio",
                 id="out-of-range"),
    pytest.param(["unknown_key.yaml"], {}, "unknown_key.yaml:3:5: unknown key 'num_leave' @ "
                 "families.lightgbm.num_leave (did you mean 'num_leaves'?)", id="unknown-key"),
    pytest.param(["bad_enum.yaml"], {}, "bad_enum.yaml:2:3: must be one of 'single_task', 'multi_task', 'cascade'; "
                 "got a string 'single_tsk' @ campaign.strategy (did you mean 'single_task'?)", id="typo-in-enum"),
    pytest.param(["kaggle_sfe"], {}, "cli:arg 1: profile 'kaggle_sfe' not found; looked in: profiles, "
                 "tkplan:profiles (check the name, or add its directory to TKPLAN_PROFILE_PATH)", id="missing-profile"),
    pytest.param(["cycle_a.yaml"], {}, "cycle_b.yaml:1:11: `extends` cycle: cycle_a.yaml → cycle_b.yaml → "
                 "cycle_a.yaml (remove one of the extends)", id="extends-cycle"),
    pytest.param(["families.lightgbm.num_leave=64"], {}, "cli:arg 1: override names no key: "
                 "families.lightgbm.num_leave (families.lightgbm.num_leave does not exist) (did you mean "
                 "'num_leaves'?; prefix with + to add a new key)", id="override-names-no-key"),
    pytest.param([], {"TKPLAN__families__lightgbm__num_leave": "64"}, "env:TKPLAN__families__lightgbm__num_leave: "
                 "override names no key: families.lightgbm.num_leave (families.lightgbm.num_leave does not exist) "
                 "(did you mean 'num_leaves'?)", id="env-names-no-key"),
    pytest.param([], {"THREADS": "lots"}, "env:THREADS: cannot read 'lots' for run.threads (THREADS maps to "
                 "run.threads; unset it or give a valid value)", id="legacy-env"),
    pytest.param(["bomb.yaml"], {}, "bomb.yaml:2:18: document expands to more than 200000 nodes (alias bomb?) "
                 "(remove the repeated aliases)", id="yaml-bomb"),
    pytest.param(["python_tag.yaml"], {}, "python_tag.yaml:2:9: tag 'tag:yaml.org,2002:python/object/apply:os.system'"
                 " is not allowed; profiles hold plain data only (remove the tag)", id="python-tag"),
    pytest.param(["empty.yaml"], {}, "empty.yaml: empty document; a profile must be a YAML mapping (write at least "
                 "one key, or remove the file)", id="empty-file"),
    pytest.param(["subdir/"], {}, "cli:arg 1: cannot read profile subdir: Is a directory", id="directory"),
]


class TestBadInput:
    @pytest.mark.parametrize("command", ["compile", "validate"])
    @pytest.mark.parametrize(("words", "env", "message"), BAD_INPUT)
    def test_exits_3_with_one_clear_message(self, cli, bad, command, words, env, message):
        (bad / "subdir").mkdir()
        result = cli(command, *words, "--hardware", LAPTOP_SPEC, env=env) if command == "compile" else \
            cli(command, *words, env=env)
        assert result.exit_code == 3
        assert result.stdout == ""
        assert result.stderr == f"error: {message}\n"
        assert "Traceback" not in result.output
        assert not (bad / "pwned").exists()

    def test_an_unreadable_file(self, cli, bad):
        secret = bad / "secret.yaml"
        secret.write_text("run: {name: secret}\n")
        secret.chmod(0)
        try:
            if os.access(secret, os.R_OK):
                pytest.skip("running as a user who can read a mode-000 file (root)")
            result = cli("compile", "secret.yaml", "--hardware", LAPTOP_SPEC)
        finally:
            secret.chmod(0o644)
        assert (result.exit_code, result.stderr) == (3, "error: cli:arg 1: cannot read profile secret.yaml: "
                                                        "Permission denied\n")

    def test_every_problem_of_one_compile_is_reported_together(self, cli, bad):
        result = cli("compile", "wrong_type.yaml", "out_of_range.yaml", "unknown_key.yaml", "bad_enum.yaml",
                     "run.threads=0", "--set", "data.lookback=0", "--hardware", LAPTOP_SPEC,
                     env={"TKPLAN__run__base_seed": "-1"})
        assert result.exit_code == 3
        lines = result.stderr.splitlines()
        assert lines[0] == "error: 7 problems in the configuration:"
        assert [line.split(": ")[0] for line in lines[1:]] == [
            "  - bad_enum.yaml:2:3", "  - cli:--set 1", "  - out_of_range.yaml:3:5", "  - unknown_key.yaml:3:5",
            "  - wrong_type.yaml:3:5", "  - env:TKPLAN__run__base_seed", "  - cli:arg 5"]
        assert "Traceback" not in result.output

    def test_files_that_cannot_be_loaded_are_reported_together(self, cli, bad):
        result = cli("validate", "malformed.yaml", "python_tag.yaml", "no_such_profile", "empty.yaml")
        assert result.exit_code == 3
        assert result.stderr.splitlines()[0] == "error: 4 problems in the configuration:"

    def test_a_bad_hardware_spec_exits_4(self, cli, tmp_path):
        (tmp_path / "box.yaml").write_text("cpus_usable: many\n")
        result = cli("compile", "--hermetic", "--hardware", "box.yaml")
        assert result.exit_code == 4
        lines = result.stderr.splitlines()
        assert lines[0] == "error: invalid hardware spec box.yaml (write one with `tkplan probe` on that machine):"
        assert "  - box.yaml:1:1: expected an integer, got a string 'many' @ cpus_usable" in lines
        assert "  - box.yaml: missing key 'memory_mb' @ memory_mb" in lines
        assert "Traceback" not in result.output

    def test_a_misspelt_hardware_spec_key_is_located_with_a_suggestion(self, cli, tmp_path):
        spec = (TESTS / "specs" / "laptop_2core.yaml").read_text().replace("memory_mb: 16384", "memory_mbs: 16384")
        (tmp_path / "box.yaml").write_text(spec)
        result = cli("compile", "--hermetic", "--hardware", "box.yaml")
        assert (result.exit_code, result.stderr.splitlines()[1:]) == (4, [
            "  - box.yaml: missing key 'memory_mb' @ memory_mb",
            "  - box.yaml:5:1: unknown key 'memory_mbs' @ memory_mbs (did you mean 'memory_mb'?)",
        ])


class TestBadInvocation:
    @pytest.mark.parametrize(("args", "message"), [
        (["compile", "--frobnicate"], r"No such option:? '?--frobnicate'?.*"),  # click words this one per version
        (["compile", "--format", "xml"],
         re.escape("Invalid value for '--format': 'xml' is not one of 'table', 'json'.")),
        (["compile", "--set"], re.escape("Option '--set' requires an argument.")),
        (["compile", "-o", "."], re.escape("Invalid value for '-o' / '--output': File '.' is a directory.")),
        (["compile", "--hardware", "missing.yaml"],
         re.escape("Invalid value for '--hardware': File 'missing.yaml' does not exist.")),
        (["explain"], re.escape("Missing argument 'KEY'.")),
        (["frobnicate"], re.escape("No such command 'frobnicate'.")),
    ])
    def test_exits_2_with_usage(self, cli, args, message):
        result = cli(*args)
        assert result.exit_code == 2
        assert re.fullmatch(f"Error: {message}", result.stderr.splitlines()[-1])
        assert "Traceback" not in result.output

    @pytest.mark.parametrize("args", [["compile", "--hermetic", "--hardware", LAPTOP_SPEC, "-o", "a-file/plan.json"],
                                      ["schema", "--export", "a-file/schemas"]])
    def test_an_output_path_that_cannot_be_written_exits_2(self, cli, tmp_path, args):
        (tmp_path / "a-file").write_text("not a directory\n")
        result = cli(*args)
        assert result.exit_code == 2
        assert re.fullmatch(r"Error: Could not open file 'a-file/(plan\.json|schemas)': a part of the path is a file, "
                            r"not a directory", result.stderr.strip())
        assert "Traceback" not in result.output

    def test_help(self, cli):
        result = cli("--help")
        assert result.exit_code == 0
        assert "tkplan compile [PROFILES...] [key=value...] -o plan.json" in result.stdout
