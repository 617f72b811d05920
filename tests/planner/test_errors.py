"""Bad input is refused with a `ConfigError` whose message says what is wrong, where it came from and what to do.

Every problem names its origin: ``file:line:col`` for a profile, ``env:NAME`` for a variable, ``cli:arg N``
or ``cli:--set N`` for the command line. All problems of one compile are reported together. The files
under ``tests/fixtures/profiles/bad`` hold one mistake each.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tkplan.errors import ConfigError, Problem
from tkplan.planner import CompileRequest, resolve

FIXTURES = Path(__file__).parent.parent / "fixtures" / "profiles"
NOT_FOUND_HINT = "(check the name, or add its directory to TKPLAN_PROFILE_PATH)"


@pytest.fixture()
def bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding a copy of every bad fixture profile."""
    shutil.copytree(FIXTURES / "bad", tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems_of(cwd: Path, *words: str, env: dict[str, str] | None = None, sets: tuple[str, ...] = ()) -> ConfigError:
    """Resolve and return the error it raises."""
    with pytest.raises(ConfigError) as info:
        resolve(CompileRequest(words=words, sets=sets, env=env or {}, cwd=cwd))
    return info.value


class TestOneMistake:
    @pytest.mark.parametrize(("profile", "message"), [
        ("malformed.yaml", "malformed.yaml:3:5: malformed YAML: while parsing a flow sequence (opened at line 2, "
                           "column 9) did not find expected ',' or ']'"),
        ("wrong_type.yaml",
         "wrong_type.yaml:3:5: expected an integer, got a string 'many' @ families.lightgbm.num_leaves"),
        ("out_of_range.yaml", "out_of_range.yaml:3:5: must be < 1; got 1.5 @ data.splits.val_ratio"),
        ("unknown_key.yaml", "unknown_key.yaml:3:5: unknown key 'num_leave' @ families.lightgbm.num_leave "
                             "(did you mean 'num_leaves'?)"),
        ("bad_enum.yaml", "bad_enum.yaml:2:3: must be one of 'single_task', 'multi_task', 'cascade'; got a string "
                          "'single_tsk' @ campaign.strategy (did you mean 'single_task'?)"),
        ("cycle_a.yaml", "cycle_b.yaml:1:11: `extends` cycle: cycle_a.yaml → cycle_b.yaml → cycle_a.yaml "
                         "(remove one of the extends)"),
        ("cycle_b.yaml", "cycle_a.yaml:1:1: `extends` cycle: cycle_b.yaml → cycle_a.yaml → cycle_b.yaml "
                         "(remove one of the extends)"),
        ("missing_parent.yaml", "missing_parent.yaml:1:20: profile 'no_such_profile' not found; looked in: profiles, "
                                f"tkplan:profiles {NOT_FOUND_HINT}"),
        ("bomb.yaml", "bomb.yaml:2:18: document expands to more than 200000 nodes (alias bomb?) "
                      "(remove the repeated aliases)"),
        ("python_tag.yaml", "python_tag.yaml:2:9: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not "
                            "allowed; profiles hold plain data only (remove the tag)"),
        ("empty.yaml", "empty.yaml: empty document; a profile must be a YAML mapping "
                       "(write at least one key, or remove the file)"),
        ("not_a_mapping.yaml", "not_a_mapping.yaml:1:1: top level must be a mapping of keys, got a list"),
        ("duplicate_key.yaml", "duplicate_key.yaml:3:1: duplicate key 'run' (each key may appear once per mapping)"),
    ])
    def test_bad_profile_file(self, bad, profile, message):
        with pytest.raises(ConfigError) as info:
            resolve(CompileRequest(words=(profile,), env={}, cwd=bad))
        assert str(info.value) == message
        assert len(info.value.problems) == 1

    def test_a_python_tag_is_never_constructed(self, bad):
        with pytest.raises(ConfigError, match=r"python/object/apply:os\.system' is not allowed"):
            resolve(CompileRequest(words=("python_tag.yaml",), env={}, cwd=bad))
        assert not (bad / "pwned").exists()

    @pytest.mark.parametrize("text", [
        "run:\n  name: !!python/name:os.system\n",
        "run: !!python/object/new:collections.OrderedDict [[]]\n",
        "run:\n  name: !custom value\n",
        "run:\n  name: !!binary aGVsbG8=\n",
        "run: !!set {a, b}\n",
    ])
    def test_only_plain_yaml_types_are_accepted(self, tmp_path, text):
        (tmp_path / "tagged.yaml").write_text(text)
        with pytest.raises(ConfigError, match=r"^tagged\.yaml:\d+:\d+: tag '.+' is not allowed; profiles hold plain "
                                              r"data only \(remove the tag\)$"):
            resolve(CompileRequest(words=("tagged.yaml",), env={}, cwd=tmp_path))

    def test_a_file_of_comments_only_is_empty(self, tmp_path):
        (tmp_path / "comments.yaml").write_text("# nothing here yet\n")
        with pytest.raises(ConfigError, match=r"^comments\.yaml: empty document; a profile must be a YAML mapping"):
            resolve(CompileRequest(words=("comments.yaml",), env={}, cwd=tmp_path))

    def test_an_empty_project_file(self, tmp_path):
        (tmp_path / "tkplan.yaml").write_text("")
        with pytest.raises(ConfigError, match=r"^tkplan\.yaml: empty document"):
            resolve(CompileRequest(env={}, cwd=tmp_path))

    def test_a_missing_profile_lists_where_it_looked(self, tmp_path):
        """Directories inside the project show relative to it, others in full."""
        team, project = tmp_path / "team", tmp_path / "project"
        team.mkdir()
        project.mkdir()
        error = problems_of(project, "kaggle_sfe", env={"TKPLAN_PROFILE_PATH": f"{team}{os.pathsep}conf"})
        assert str(error) == (f"cli:arg 1: profile 'kaggle_sfe' not found; looked in: profiles, {team.as_posix()}, "
                              f"conf, tkplan:profiles {NOT_FOUND_HINT}")

    def test_a_missing_profile_file(self, tmp_path):
        error = problems_of(tmp_path, "conf/nothere.yaml")
        assert str(error) == "cli:arg 1: cannot read profile conf/nothere.yaml: No such file or directory"

    def test_an_unreadable_file(self, tmp_path):
        secret = tmp_path / "secret.yaml"
        secret.write_text("run: {name: secret}\n")
        secret.chmod(0)
        try:
            if os.access(secret, os.R_OK):
                pytest.skip("running as a user who can read a mode-000 file (root)")
            error = problems_of(tmp_path, "secret.yaml")
        finally:
            secret.chmod(0o644)
        assert str(error) == "cli:arg 1: cannot read profile secret.yaml: Permission denied"

    def test_a_directory_given_as_a_profile(self, tmp_path):
        (tmp_path / "conf").mkdir()
        error = problems_of(tmp_path, "conf/")
        assert str(error) == "cli:arg 1: cannot read profile conf: Is a directory"

    def test_a_file_too_large_to_be_a_profile(self, tmp_path):
        (tmp_path / "huge.yaml").write_text("run:\n" + "  # padding\n" * 400_000)
        error = problems_of(tmp_path, "huge.yaml")
        assert str(error) == "huge.yaml: file larger than 4 MiB; not a profile"

    def test_a_file_that_is_not_utf8(self, tmp_path):
        (tmp_path / "latin1.yaml").write_bytes("run: {name: café}\n".encode("latin-1"))
        error = problems_of(tmp_path, "latin1.yaml")
        assert str(error) == "latin1.yaml: not UTF-8 text (byte 15)"

    @pytest.mark.parametrize(("text", "message"), [
        ("extends: 5\n", "must be a profile name or a list of them, got 5"),
        ("extends: {ci_fast: true}\n", "must be a profile name or a list of them, got {'ci_fast': True}"),
        ("extends: null\n", "must be a profile name or a list of them, got None"),
    ])
    def test_extends_must_name_profiles(self, tmp_path, text, message):
        (tmp_path / "tkplan.yaml").write_text(text)
        error = problems_of(tmp_path)
        assert str(error) == f"tkplan.yaml:1:1: `extends` {message} @ extends (e.g. extends: [ci_fast, ../shared.yaml])"

    def test_an_unknown_section_is_located_in_its_file(self, tmp_path):
        (tmp_path / "tkplan.yaml").write_text("famlies:\n  lightgbm:\n    num_leaves: 3\n")
        error = problems_of(tmp_path)
        assert str(error) == "tkplan.yaml:3:5: unknown key 'famlies' @ famlies (did you mean 'families'?)"

    def test_an_unknown_family(self, tmp_path):
        error = problems_of(tmp_path, "campaign.families=[lightgbm, XGBost]")
        assert str(error) == "cli:arg 1: unknown family 'XGBost' @ campaign.families (did you mean 'xgboost'?)"

    def test_a_cross_section_minimum_above_the_synthetic_panels_symbols(self, tmp_path):
        """Every timestamp would be dropped: a compile error where the minimum was set, not failed steps later."""
        error = problems_of(tmp_path, "data.synthetic.symbols=8")
        assert str(error).endswith("data.min_cs = 10 exceeds the 8 symbols of data.synthetic: every timestamp would be "
                                   "dropped @ data.min_cs (lower data.min_cs to at most 8, "
                                   "or raise data.synthetic.symbols)")
        assert str(error).startswith("tkplan:profiles/base.yaml:")


class TestOverrides:
    def test_an_override_that_names_no_key(self, tmp_path):
        error = problems_of(tmp_path, "families.lightgbm.num_leave=64")
        assert str(error) == ("cli:arg 1: override names no key: families.lightgbm.num_leave "
                              "(families.lightgbm.num_leave does not exist) "
                              "(did you mean 'num_leaves'?; prefix with + to add a new key)")

    def test_an_environment_variable_that_names_no_key(self, tmp_path):
        error = problems_of(tmp_path, env={"TKPLAN__families__lightgbm__num_leave": "64"})
        assert str(error) == ("env:TKPLAN__families__lightgbm__num_leave: override names no key: "
                              "families.lightgbm.num_leave (families.lightgbm.num_leave does not exist) "
                              "(did you mean 'num_leaves'?)")

    def test_an_override_below_a_value(self, tmp_path):
        error = problems_of(tmp_path, "run.name.first=x")
        assert str(error) == "cli:arg 1: run.name is a value, not a mapping; cannot set run.name.first"

    @pytest.mark.parametrize(("word", "message"), [
        ("families.lightgbm.num_leaves=many",
         "cli:arg 1: expected an integer, got a string 'many' @ families.lightgbm.num_leaves"),
        ("families.lightgbm.num_leaves=1", "cli:arg 1: must be ≥ 2; got 1 @ families.lightgbm.num_leaves"),
        ("campaign.strategy=cascde", "cli:arg 1: must be one of 'single_task', 'multi_task', 'cascade'; got a "
                                     "string 'cascde' @ campaign.strategy (did you mean 'cascade'?)"),
        ("campaign.seeds=[1, 2", "cli:arg 1: cannot read value '[1, 2': expected ',' or ']', found the end at "
                                 "column 6"),
        ("=3", "cli:arg 1: bad override '=3': expected key.path=value (forms: key=v, +key=v (add), ++key=v "
               "(add or set), ~key or ~key=v (remove))"),
        ("run..name=x", "cli:arg 1: bad override 'run..name=x': expected key.path=value (forms: key=v, +key=v "
                        "(add), ++key=v (add or set), ~key or ~key=v (remove))"),
        ("run.name=!!python/name:os.system", "cli:arg 1: must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$; got "
                                             "'!!python/name:os.system' @ run.name"),  # no tags: only text
    ])
    def test_a_bad_command_line_override(self, tmp_path, word, message):
        assert str(problems_of(tmp_path, word)) == message

    def test_a_bad_set(self, tmp_path):
        error = problems_of(tmp_path, sets=("run.threads",))
        assert str(error) == "cli:--set 1: --set needs key=value, got 'run.threads'"

    @pytest.mark.parametrize(("env", "message"), [
        ({"THREADS": "many"}, "env:THREADS: cannot read 'many' for run.threads "
                              "(THREADS maps to run.threads; unset it or give a valid value)"),
        ({"CUDA_VISIBLE_DEVICES": "first"}, "env:CUDA_VISIBLE_DEVICES: cannot read 'first' for gpu.devices "
                                               "(CUDA_VISIBLE_DEVICES maps to gpu.devices; "
                                               "unset it or give a valid value)"),
        ({"TKPLAN__run__threads": "0"}, "env:TKPLAN__run__threads: got an integer 0; expected 'auto'; an integer ≥ 1 "
                                        "@ run.threads (Total thread budget for the run: auto = usable CPUs "
                                        "(affinity ∩ cgroup quota), or a cap.)"),
        ({"TKPLAN__run": "{threads: [1,"}, "env:TKPLAN__run: cannot read value '{threads: [1,': malformed YAML: "
                                           "while parsing a flow node did not find expected node content"),
        ({"TKPLAN____x": "1"}, "env:TKPLAN____x: bad variable name: expected TKPLAN__section__key"),
    ])
    def test_a_bad_environment_variable(self, tmp_path, env, message):
        assert str(problems_of(tmp_path, env=env)) == message


class TestAllProblemsAtOnce:
    def test_problems_from_several_files_env_and_command_line_are_reported_together(self, bad):
        error = problems_of(bad, "wrong_type.yaml", "out_of_range.yaml", "unknown_key.yaml", "bad_enum.yaml",
                            "run.threads=0", env={"TKPLAN__run__base_seed": "-1"}, sets=("data.lookback=0",))
        assert [(p.origin, p.path) for p in error.problems] == [
            ("bad_enum.yaml:2:3", "campaign.strategy"),
            ("cli:--set 1", "data.lookback"),
            ("out_of_range.yaml:3:5", "data.splits.val_ratio"),
            ("unknown_key.yaml:3:5", "families.lightgbm.num_leave"),
            ("wrong_type.yaml:3:5", "families.lightgbm.num_leaves"),
            ("env:TKPLAN__run__base_seed", "run.base_seed"),
            ("cli:arg 5", "run.threads"),
        ]
        assert str(error).splitlines()[0] == "7 problems in the configuration:"

    def test_every_unloadable_file_is_reported(self, bad):
        error = problems_of(bad, "malformed.yaml", "python_tag.yaml", "no_such_profile", "empty.yaml")
        assert [p.origin for p in error.problems] == [
            "malformed.yaml:3:5", "python_tag.yaml:2:9", "cli:arg 3", "empty.yaml"]
        assert str(error).splitlines()[0] == "4 problems in the configuration:"

    def test_override_problems_come_with_the_schema_problems(self, bad):
        error = problems_of(bad, "wrong_type.yaml", "families.lightgbm.num_leave=3",
                            env={"THREADS": "x", "TKPLAN__nothing": "1"})
        assert [p.origin for p in error.problems] == [
            "env:THREADS", "env:TKPLAN__nothing", "cli:arg 2", "wrong_type.yaml:3:5"]

    def test_each_problem_is_structured(self, bad):
        error = problems_of(bad, "unknown_key.yaml")
        assert error.problems == (Problem("unknown key 'num_leave'", "families.lightgbm.num_leave",
                                          "unknown_key.yaml:3:5", "did you mean 'num_leaves'?"),)
        assert isinstance(error, ValueError)

    def test_the_same_problem_is_reported_once(self, tmp_path):
        """A family that cannot train a target is one problem, not one per seed."""
        error = problems_of(tmp_path, "campaign.families=[quantile_lightgbm]", "campaign.skip_unsupported=false",
                            "campaign.seeds=[1, 2, 3]")
        assert len(error.problems) == 1
        assert error.problems[0].message == "family 'quantile_lightgbm' cannot train binary target(s) will_peak_5m"
