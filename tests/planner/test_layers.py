"""Layering: base → families → machine → project ``tkplan.yaml`` → environment → command line, with provenance.

Each test lays out a project the way a user would (files under a temporary working directory), compiles
it through the public API or the ``tkplan`` command, and reads the result back: the resolved values, the
chain of settings behind a key (``tkplan explain``), and what the plan records about its inputs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tkplan.errors import ConfigError
from tkplan.planner import CompileRequest, compile_plan, load_hardware, resolve
from tkplan.planner._sources import shipped_dir

TESTS = Path(__file__).parent.parent
FIXTURES = TESTS / "fixtures" / "profiles"
LAPTOP = load_hardware(TESTS / "specs" / "laptop_2core.yaml")
SHIPPED = shipped_dir()
FAMILY_COUNT = len(list((SHIPPED / "families").glob("*.yaml")))


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path → text) under ``root``; return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def locate(path: Path, *keys: str) -> str:
    """``line:col`` of the block-style key path ``keys`` in a YAML file, found by reading its text."""
    depth, indent = 0, -1
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.match(r"(\s*)([A-Za-z_][\w]*):", line)
        if match and len(match.group(1)) > indent and match.group(2) == keys[depth]:
            depth, indent = depth + 1, len(match.group(1))
            if depth == len(keys):
                return f"{number}:{indent + 1}"
    raise AssertionError(f"{'.'.join(keys)} not found in {path}")


def chain(resolved: Any, key: str) -> list[tuple[str, str, Any]]:
    """The settings of ``key``, lowest first, as (source, where, value)."""
    return [(s.source, s.where, s.value) for s in resolved.provenance[key]]


def request(cwd: Path, *words: str, sets: tuple[str, ...] = (), env: dict[str, str] | None = None,
            hermetic: bool = False) -> CompileRequest:
    return CompileRequest(words=words, sets=sets, env=env or {}, cwd=cwd, hermetic=hermetic)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of the fixture project: tkplan.yaml extending a diamond of shared layers, its own profiles/."""
    shutil.copytree(FIXTURES / "project", tmp_path / "project")
    return tmp_path / "project"


@pytest.fixture()
def team_path(tmp_path: Path) -> Path:
    """A directory for TKPLAN_PROFILE_PATH, outside the project."""
    shutil.copytree(FIXTURES / "shared_path", tmp_path / "team")
    return tmp_path / "team"



def explained(output: str) -> list[str]:
    """``tkplan explain`` output with runs of spaces collapsed: one entry per line."""
    return [re.sub(r"\s+", " ", line).strip() for line in output.splitlines()]


class TestOrder:
    def test_each_layer_overrides_the_one_below(self, cli, tmp_path):
        """base → a family profile → the machine (laptop by default) → tkplan.yaml → env → CLI; the last wins."""
        write(tmp_path, {
            "profiles/families/zz_order.yaml": "run: {name: from_family}\n",
            "tkplan.yaml": "run:\n  name: from_project\n",
        })
        result = cli("explain", "run.name", "run.name=from_cli", env={"TKPLAN__run__name": "from_env"})
        assert result.exit_code == 0, result.output
        base = locate(SHIPPED / "base.yaml", "run", "name")
        laptop = locate(SHIPPED / "machines" / "laptop.yaml", "run", "name")
        assert explained(result.output) == [
            'run.name = "from_cli"',
            f'tkplan:profiles/base.yaml:{base} base "campaign" (overridden)',
            'profiles/families/zz_order.yaml:1:7 families/zz_order "from_family" (overridden)',
            f'tkplan:profiles/machines/laptop.yaml:{laptop} laptop "laptop" (overridden)',
            'tkplan.yaml:2:3 project "from_project" (overridden)',
            'env:TKPLAN__run__name "from_env" (overridden)',
            '* cli:arg 1 "from_cli"',
        ]

    def test_the_plan_lists_its_layers_lowest_first(self, project):
        plan = compile_plan(request(project, "workstation"), LAPTOP, "spec", "test")
        layers = [(layer.kind, layer.name, layer.file) for layer in plan.inputs.layers]
        assert layers[0] == ("base", "base", "tkplan:profiles/base.yaml")
        families = layers[1:FAMILY_COUNT + 2]
        assert {kind for kind, _, _ in families} == {"family"}
        assert ("family", "families/lightgbm", "tkplan:profiles/families/lightgbm.yaml") in families
        assert ("family", "families/ridge", "profiles/families/ridge.yaml") in families
        assert layers[FAMILY_COUNT + 2:] == [
            ("machine", "workstation", "profiles/machines/workstation.yaml"),
            ("file", "shared/common.yaml", "shared/common.yaml"),
            ("file", "shared/left.yaml", "shared/left.yaml"),
            ("file", "shared/right.yaml", "shared/right.yaml"),
            ("file", "shared/team.yaml", "shared/team.yaml"),
            ("project", "project", "tkplan.yaml"),
        ]

    def test_laptop_is_the_machine_when_none_is_named(self, tmp_path):
        resolved = resolve(request(tmp_path))
        assert [layer.name for layer in resolved.layers if layer.kind != "family"] == ["base", "laptop"]
        assert resolved.config["run"]["name"] == "laptop"

    def test_machine_profiles_apply_in_command_line_order(self, tmp_path):
        resolved = resolve(request(tmp_path, "kaggle_safe", "ci_fast"))
        assert [layer.name for layer in resolved.layers if layer.kind == "machine"] == ["kaggle_safe", "ci_fast"]
        assert resolved.config["run"]["name"] == "ci_fast"
        assert resolved.config["limits"]["total_time_budget_h"] == 0.25  # ci_fast's, over kaggle_safe's 9


class TestExtends:
    def test_a_diamond_loads_its_shared_parent_once_before_both_children(self, project):
        """team extends [left, right]; both extend common (one as a string, one as a list); paths are relative."""
        resolved = resolve(request(project))
        files = [layer.file for layer in resolved.layers if layer.kind == "file"]
        assert files == ["shared/common.yaml", "shared/left.yaml", "shared/right.yaml", "shared/team.yaml"]
        assert chain(resolved, "data.lookback")[1:] == [
            ("shared/common.yaml", "shared/common.yaml:4:3", 16),
            ("shared/left.yaml", "shared/left.yaml:3:3", 32),
            ("shared/right.yaml", "shared/right.yaml:3:3", 48),
        ]
        assert resolved.config["limits"]["timeout_s"] == 600
        assert chain(resolved, "families.lightgbm.learning_rate")[-1] == (
            "shared/team.yaml", "shared/team.yaml:5:5", 0.05)

    def test_extends_by_name_loads_the_named_profile_first(self, tmp_path):
        write(tmp_path, {"profiles/quick.yaml": "extends: ci_fast\nfamilies:\n  lightgbm: {n_estimators: 20}\n"})
        resolved = resolve(request(tmp_path, "quick"))
        assert [layer.name for layer in resolved.layers if layer.kind == "machine"] == ["ci_fast", "quick"]
        assert resolved.config["run"]["name"] == "ci_fast"
        assert [source for source, _, _ in chain(resolved, "families.lightgbm.n_estimators")] == [
            "families/lightgbm", "ci_fast", "quick"]

    def test_extends_is_not_part_of_the_configuration(self, project):
        resolved = resolve(request(project))
        assert "extends" not in resolved.config
        assert not [key for key in resolved.provenance if key.startswith("extends")]


class TestSearchPath:
    def test_project_profiles_shadow_the_profile_path_which_shadows_the_shipped(self, project, team_path):
        env = {"TKPLAN_PROFILE_PATH": str(team_path)}

        def run_name(profile: str) -> tuple[str, str]:
            resolved = resolve(request(project, profile, env=env))
            machine = next(layer for layer in resolved.layers if layer.kind == "machine")
            return machine.file, resolved.provenance["run.name"][-2].value

        assert run_name("workstation") == ("profiles/machines/workstation.yaml", "workstation")
        assert run_name("ci_fast") == (f"{team_path.as_posix()}/machines/ci_fast.yaml", "team_ci")
        assert run_name("teambox") == (f"{team_path.as_posix()}/machines/teambox.yaml", "teambox")
        assert run_name("kaggle_safe") == ("tkplan:profiles/machines/kaggle_safe.yaml", "kaggle_safe")

    def test_a_relative_profile_path_entry_is_relative_to_the_working_directory(self, tmp_path):
        write(tmp_path, {"conf/teambox.yaml": "run: {name: teambox}\n"})
        resolved = resolve(request(tmp_path, "teambox", env={"TKPLAN_PROFILE_PATH": "conf"}))
        assert chain(resolved, "run.name")[-1] == ("teambox", "conf/teambox.yaml:1:7", "teambox")

    def test_a_family_of_your_own_in_the_project(self, project):
        plan = compile_plan(request(project), LAPTOP, "spec", "test")
        ridge = [step for step in plan.steps if step.family == "ridge"]
        assert sorted(step.id for step in ridge) == [
            "ridge.fwd_ret_15m.s1", "ridge.fwd_ret_15m.s2", "ridge.fwd_ret_5m.s1", "ridge.fwd_ret_5m.s2"]
        step = plan.step("ridge.fwd_ret_5m.s1")
        assert (step.entrypoint, dict(step.params)) == ("mytrainers.ridge:fit", {"alpha": 1.0})
        assert (step.isolation.mode, step.isolation.reason) == (
            "inproc", "pure numpy and cheap: no thread state to protect")

    def test_a_project_family_file_replaces_the_shipped_one_of_that_name(self, tmp_path):
        shipped = (SHIPPED / "families" / "lightgbm.yaml").read_text()
        write(tmp_path, {"profiles/families/lightgbm.yaml": shipped.replace("num_leaves: 96", "num_leaves: 12")})
        resolved = resolve(request(tmp_path))
        assert [layer.file for layer in resolved.layers if layer.name == "families/lightgbm"] == [
            "profiles/families/lightgbm.yaml"]
        assert chain(resolved, "families.lightgbm.num_leaves") == [
            ("families/lightgbm",
             "profiles/families/lightgbm.yaml:"
             f"{locate(SHIPPED / 'families' / 'lightgbm.yaml', 'families', 'lightgbm', 'num_leaves')}",
             12)]


class TestMerge:
    def test_mappings_merge_deeply(self, tmp_path):
        write(tmp_path, {"tkplan.yaml": "data:\n  splits:\n    val_ratio: 0.2\n"})
        config = resolve(request(tmp_path)).config
        assert config["data"]["splits"] == {"val_ratio": 0.2, "test_ratio": 0.15, "purge_gap": 17}
        assert config["data"]["lookback"] == 64  # the rest of `data` is untouched

    def test_lists_are_replaced_not_appended(self, tmp_path):
        write(tmp_path, {"tkplan.yaml": "campaign:\n  targets: [fwd_ret_15m]\n"
                                        "families:\n  mlp:\n    hidden_layers: [64]\n"})
        config = resolve(request(tmp_path)).config
        assert config["campaign"]["targets"] == ["fwd_ret_15m"]
        assert config["families"]["mlp"]["hidden_layers"] == [64]

    def test_null_is_a_value_that_overrides(self, project):
        """workstation caps memory at 8 GB; a null above it means "no cap", not "unset"."""
        (project / "tkplan.yaml").write_text((project / "tkplan.yaml").read_text() + "limits:\n  memory_cap_gb: null\n")
        resolved = resolve(request(project, "workstation"))
        assert resolved.config["limits"]["memory_cap_gb"] is None
        base = locate(SHIPPED / "base.yaml", "limits", "memory_cap_gb")
        assert chain(resolved, "limits.memory_cap_gb") == [
            ("base", f"tkplan:profiles/base.yaml:{base}", None),
            ("workstation", "profiles/machines/workstation.yaml:5:3", 8),
            ("project", "tkplan.yaml:13:3", None),
        ]

    def test_null_from_the_command_line(self, project):
        resolved = resolve(request(project, "workstation", "limits.memory_cap_gb=null"))
        assert chain(resolved, "limits.memory_cap_gb")[-1] == ("cli:arg 2", "cli:arg 2", None)
        assert resolved.config["limits"]["memory_cap_gb"] is None


class TestEnvironment:
    def test_double_underscore_names_a_key(self, tmp_path):
        resolved = resolve(request(tmp_path, env={"TKPLAN__families__lightgbm__num_leaves": "64"}))
        assert resolved.config["families"]["lightgbm"]["num_leaves"] == 64
        assert chain(resolved, "families.lightgbm.num_leaves")[-1] == (
            "env:TKPLAN__families__lightgbm__num_leaves", "env:TKPLAN__families__lightgbm__num_leaves", 64)

    def test_names_match_keys_in_any_case(self, tmp_path):
        resolved = resolve(request(tmp_path, env={"TKPLAN__FAMILIES__LIGHTGBM__NUM_LEAVES": "64"}))
        assert resolved.config["families"]["lightgbm"]["num_leaves"] == 64
        assert "FAMILIES" not in resolved.config
        assert chain(resolved, "families.lightgbm.num_leaves")[-1][0] == "env:TKPLAN__FAMILIES__LIGHTGBM__NUM_LEAVES"

    def test_values_parse_as_yaml(self, tmp_path):
        resolved = resolve(request(tmp_path, env={"TKPLAN__campaign__seeds": "[1, 2, 3]",
                                                  "TKPLAN__training__compile": "true"}))
        assert resolved.config["campaign"]["seeds"] == [1, 2, 3]
        assert resolved.config["training"]["compile"] is True

    @pytest.mark.parametrize(("name", "value", "key", "expected"), [
        ("THREADS", "1", "run.threads", 1),
        ("CUDA_VISIBLE_DEVICES", "-1", "gpu.devices", []),
        ("CUDA_VISIBLE_DEVICES", "", "gpu.devices", []),
        ("TRAINER_GPU_IDS", "0,1", "gpu.devices", [0, 1]),
        ("TRAINER_FORCE_ISOLATION_FOR", "LightGBM,XGBoost", "isolation.process_for", ["LightGBM", "XGBoost"]),
        ("TRAINER_NO_ISOLATION", "1", "isolation.force", "inproc"),
        ("TRAINER_CHILD_MEMCAP_GB", "0", "limits.memory_cap_gb", None),
        ("TRAINER_CHILD_MEMCAP_GB", "6", "limits.memory_cap_gb", 6.0),
        ("SEQ_BACKEND", "tf", "campaign.nn_backend", "tf"),
        ("MAX_SPS", "20", "data.max_samples_per_symbol", 20),
        ("PYTHONHASHSEED", "7", "determinism.python_hash_seed", 7),
        ("TF_CPP_MIN_LOG_LEVEL", "3", "logging.tf_log_level", "3"),
    ])
    def test_legacy_variables_map_to_keys(self, tmp_path, name, value, key, expected):
        resolved = resolve(request(tmp_path, env={name: value}))
        assert chain(resolved, key)[-1] == (f"env:{name}", f"env:{name}", expected)
        assert resolved.env_used == {name: value}

    def test_forced_isolation_reaches_the_steps(self, tmp_path):
        env = {"TRAINER_FORCE_ISOLATION_FOR": "FTRLProximal"}
        plan = compile_plan(request(tmp_path, "campaign.families=[ftrl_proximal]", env=env), LAPTOP, "spec", "t")
        assert {step.isolation.mode for step in plan.steps} == {"process"}
        hermetic = compile_plan(request(tmp_path, "campaign.families=[ftrl_proximal]", env=env, hermetic=True),
                                LAPTOP, "spec", "t")
        assert {step.isolation.mode for step in hermetic.steps} == {"inproc"}

    def test_the_command_line_wins_over_the_environment(self, tmp_path):
        resolved = resolve(request(tmp_path, "run.threads=2", env={"THREADS": "1"}))
        assert [source for source, _, _ in chain(resolved, "run.threads")] == ["base", "env:THREADS", "cli:arg 1"]
        assert resolved.config["run"]["threads"] == 2

    def test_the_plan_records_every_environment_value_it_used(self, project, team_path):
        env = {
            "THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "-1",
            "TKPLAN__families__lightgbm__num_leaves": "64",
            "TKPLAN_PROFILE_PATH": str(team_path),
            "HOME": "/home/someone",
            "SOMETHING_ELSE": "1",
        }
        plan = compile_plan(request(project, "teambox", env=env), LAPTOP, "spec", "test")
        assert dict(plan.inputs.env) == {
            "THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "-1",
            "TKPLAN__families__lightgbm__num_leaves": "64",
            "TKPLAN_PROFILE_PATH": str(team_path),
        }

    def test_hermetic_ignores_the_environment_and_the_profile_path(self, project, team_path):
        env = {"THREADS": "1", "TKPLAN__run__name": "from_env", "TKPLAN_PROFILE_PATH": str(team_path)}
        plan = compile_plan(request(project, env=env, hermetic=True), LAPTOP, "spec", "test")
        assert dict(plan.inputs.env) == {}
        assert (plan.config["run"]["threads"], plan.config["run"]["name"]) == ("auto", "churn_study")
        with pytest.raises(ConfigError, match=r"^cli:arg 1: profile 'teambox' not found; looked in: profiles, "
                                              r"tkplan:profiles \("):
            resolve(request(project, "teambox", env=env, hermetic=True))

    def test_hermetic_on_the_command_line(self, cli, tmp_path):
        result = cli("explain", "run.threads", "--hermetic", env={"THREADS": "1"})
        assert result.exit_code == 0, result.output
        assert explained(result.output)[0] == 'run.threads = "auto"'
        assert "env:THREADS" not in result.output


class TestCommandLine:
    def test_key_value_and_set(self, tmp_path):
        resolved = resolve(request(tmp_path, "campaign.seeds=[1, 2]", "run.name=trial",
                                   sets=("families.lightgbm.num_leaves=31",)))
        assert resolved.config["campaign"]["seeds"] == [1, 2]
        assert resolved.config["run"]["name"] == "trial"
        assert chain(resolved, "run.name")[-1] == ("cli:arg 2", "cli:arg 2", "trial")
        assert chain(resolved, "families.lightgbm.num_leaves")[-1] == ("cli:--set 1", "cli:--set 1", 31)

    def test_set_on_the_command_line(self, cli):
        result = cli("explain", "families.lightgbm.num_leaves", "--hermetic",
                     "--set", "families.lightgbm.num_leaves=31")
        assert result.exit_code == 0, result.output
        lines = explained(result.output)
        assert (lines[0], lines[-1]) == ("families.lightgbm.num_leaves = 31", "* cli:--set 1 31")

    def test_a_mapping_value_merges_into_the_section(self, tmp_path):
        resolved = resolve(request(tmp_path, "data.splits={val_ratio: 0.3}"))
        assert resolved.config["data"]["splits"] == {"val_ratio": 0.3, "test_ratio": 0.15, "purge_gap": 17}

    def test_plus_adds_a_key_no_layer_has(self, tmp_path):
        plan = compile_plan(request(tmp_path, "+data.tasks.fwd_ret_1h=regression", "campaign.targets=[fwd_ret_1h]",
                                    "campaign.families=[lightgbm]", "+env.OMP_WAIT_POLICY=passive"),
                            LAPTOP, "spec", "test")
        assert [step.id for step in plan.steps] == ["lightgbm.fwd_ret_1h.s42"]
        assert plan.steps[0].env["OMP_WAIT_POLICY"] == "passive"
        assert plan.inputs.cli == ("+data.tasks.fwd_ret_1h=regression", "campaign.targets=[fwd_ret_1h]",
                                   "campaign.families=[lightgbm]", "+env.OMP_WAIT_POLICY=passive")

    def test_without_plus_a_new_key_is_an_error(self, tmp_path):
        with pytest.raises(ConfigError) as info:
            resolve(request(tmp_path, "env.OMP_WAIT_POLICY=passive"))
        assert str(info.value) == (
            "cli:arg 1: override names no key: env.OMP_WAIT_POLICY (env.OMP_WAIT_POLICY does not exist) "
            "(keys here: INPUTRC, TERM; prefix with + to add a new key)")

    def test_the_plan_records_the_command_line(self, tmp_path):
        plan = compile_plan(request(tmp_path, "ci_fast", "run.threads=2", sets=("run.name=x",)), LAPTOP, "spec", "t")
        assert plan.inputs.cli == ("ci_fast", "run.threads=2", "--set=run.name=x")
