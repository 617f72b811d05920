"""`tkplan audit` through its click command: formats, draft profile, baseline gate, profiles, settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner, Result
from ruamel.yaml import YAML

from tkplan.tools.audit import KINDS
from tkplan.tools.audit._cli import audit

from .test_audit import EXPECTED


def run(*args: str) -> Result:
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


class TestFormats:
    def test_json_lists_every_finding_with_its_fingerprint(self, workdir: Path) -> None:
        result = run("audit_tree", "--format", "json")

        assert result.exit_code == 0
        report = json.loads(result.stdout)
        assert report["format"] == "tkplan.audit/1"
        assert report["summary"] == {
            "files": 9,
            "findings": len(EXPECTED),
            "skipped": 2,
            "known": 0,
            "by_kind": {
                "argparse_default": 2, "call_kwarg": 2, "clamp": 5, "config_dict": 1, "config_file": 2, "constant": 6,
                "constructor_kwarg": 10, "env_default": 3, "env_write": 6, "fallback": 1, "get_default": 4, "local": 1,
                "positional_arg": 1, "process_setting": 2, "setdefault": 2, "shell_default": 3,
                "signature_default": 4, "threshold": 5,
            },
            "by_status": {"unchecked": len(EXPECTED)},
        }
        assert report["findings"][2] == {
            "path": "audit_tree/lightgbm_trainer.py",
            "line": 5,
            "col": 1,
            "kind": "constant",
            "key": "NUM_LEAVES",
            "value": 96,
            "scope": "",
            "suggested_key": "families.lightgbm.num_leaves",
            "status": "unchecked",
            "profile_key": "",
            "profile_value": None,
            "profile_origin": "",
            "fingerprint": ("audit_tree/lightgbm_trainer.py:constant:<module>:NUM_LEAVES:"
                            + report["findings"][2]["fingerprint"][-12:]),
        }
        assert [(f["path"], f["line"], f["col"]) for f in report["findings"]] == [
            tuple(row[0].rsplit(":", 2)[:1]) + tuple(int(n) for n in row[0].rsplit(":", 2)[1:]) for row in EXPECTED
        ]
        assert report["skipped"] == [
            {"path": "audit_tree/broken.py", "reason": "syntax error at line 1: invalid syntax"},
            {"path": "audit_tree/latin1.py",
             "reason": "not valid UTF-8 text (byte 5); declare the encoding or re-save as UTF-8"},
        ]

    def test_yaml_holds_the_same_document_as_json(self, workdir: Path) -> None:
        as_json = json.loads(run("audit_tree", "--format", "json").stdout)
        as_yaml = YAML(typ="safe").load(run("audit_tree", "--format", "yaml").stdout)

        assert as_yaml == as_json

    def test_table_ends_with_skipped_files_notes_and_a_summary(self, workdir: Path) -> None:
        lines = run("audit_tree").stdout.splitlines()

        assert lines[0].split() == ["LOCATION", "KIND", "KEY", "VALUE", "SCOPE", "SUGGESTED", "KEY"]
        assert lines[3].split() == [
            "audit_tree/lightgbm_trainer.py:5:1", "constant", "NUM_LEAVES", "96", "<module>",
            "families.lightgbm.num_leaves",
        ]
        assert lines[-4:] == [
            "skipped audit_tree/broken.py: syntax error at line 1: invalid syntax",
            "skipped audit_tree/latin1.py: not valid UTF-8 text (byte 5); declare the encoding or re-save as UTF-8",
            "note: audit_tree/ignored.py: line 5: unknown kind 'constnat' in a tkplan: ignore comment",
            f"{len(EXPECTED)} findings in 9 files, 2 skipped",
        ]

    def test_sarif_is_a_minimal_valid_2_1_0_log(self, workdir: Path) -> None:
        log = json.loads(run("audit_tree", "--format", "sarif", "--profiles", "audit_profiles").stdout)

        assert log["version"] == "2.1.0"
        assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
        (sarif_run,) = log["runs"]
        rules = sarif_run["tool"]["driver"]["rules"]
        assert sarif_run["tool"]["driver"]["name"] == "tkplan-audit"
        assert [r["id"] for r in rules] == sorted(KINDS)
        assert all(r["shortDescription"]["text"] == KINDS[r["id"]] for r in rules)
        results = sarif_run["results"]
        assert len(results) == len(EXPECTED)
        for item in results:
            assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
            assert item["level"] in ("warning", "error")
            assert item["message"]["text"]
            (location,) = item["locations"]
            region = location["physicalLocation"]["region"]
            assert region["startLine"] >= 1 and region["startColumn"] >= 1
            assert location["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
            assert item["partialFingerprints"]["tkplanAudit/v1"]
        drift = [r for r in results if r["level"] == "error"]
        assert [(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                 r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in drift] == [
            ("audit_tree/lightgbm_trainer.py", 10),
            ("audit_tree/lightgbm_trainer.py", 14),
            ("audit_tree/lightgbm_trainer.py", 15),
            ("audit_tree/run.sh", 4),
            ("audit_tree/settings.yaml", 3),
            ("audit_tree/train.py", 6),
            ("audit_tree/train.py", 8),
            ("audit_tree/trainer_loop.py", 6),
        ]
        assert drift[1]["message"]["text"] == (
            "max_depth = 8 is hardcoded (get_default); it belongs in the profiles as families.lightgbm.max_depth; "
            "the profile says 6 at audit_profiles/families/lightgbm.yaml:4 (families.lightgbm.max_depth)"
        )
        notifications = sarif_run["invocations"][0]["toolExecutionNotifications"]
        assert [n["message"]["text"] for n in notifications] == [
            "skipped: syntax error at line 1: invalid syntax",
            "skipped: not valid UTF-8 text (byte 5); declare the encoding or re-save as UTF-8",
        ]


class TestProfiles:
    def test_status_column_marks_drift_duplicate_and_not_centralised(self, workdir: Path) -> None:
        result = run("audit_tree", "--profiles", "audit_profiles")

        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert lines[0].split()[-1] == "STATUS"
        by_location = {line.split()[0]: line for line in lines[1:]}
        assert by_location["audit_tree/lightgbm_trainer.py:14:55"].endswith(
            "drift (families.lightgbm.max_depth = 6 at audit_profiles/families/lightgbm.yaml:4)"
        )
        assert by_location["audit_tree/run.sh:4:10"].endswith(
            'drift (run.threads = "auto" at audit_profiles/base.yaml:9)')
        assert by_location["audit_tree/train.py:10:47"].endswith(
            "duplicate (gpu.devices = [0] at audit_profiles/base.yaml:7)")
        assert by_location["audit_tree/safety.py:18:19"].endswith("not_centralised")
        assert lines[-1] == f"{len(EXPECTED)} findings in 9 files, 2 skipped — 8 drift, 7 duplicate, 45 not_centralised"

    def test_a_broken_profile_is_a_bad_parameter(self, workdir: Path) -> None:
        Path("bad.yaml").write_text("a: [1\n", encoding="utf-8")

        result = run("audit_tree", "--profiles", "bad.yaml")

        assert result.exit_code == 2
        assert "Invalid value for --profiles: bad.yaml: not a valid profile" in result.stderr


class TestEmitProfile:
    def test_draft_profile_holds_values_under_suggested_keys_with_their_origin(self, workdir: Path) -> None:
        result = run("audit_tree", "--emit-profile", "draft.yaml", "--format", "json")

        assert result.exit_code == 0
        draft = YAML().load(Path("draft.yaml").read_text(encoding="utf-8"))
        assert draft["families"]["lightgbm"]["num_leaves"] == 96
        assert draft["env"]["EPOCHS"] == "50"
        assert draft["gpu"] == {"devices": [0]}  # CUDA_VISIBLE_DEVICES="0", read as tkplan reads it
        assert draft["determinism"] == {"python_hash_seed": 42}
        assert draft["run"] == {"threads": 4}
        own = draft["project"]  # what tkplan does not know: the code base's own settings
        assert own["families"]["lightgbm"]["lgbm_regressor"] == {"n_estimators": 1000, "min_child_weight": 0.5}
        assert own["run"] == {"threads_fallback": 2, "threads_max": 8, "threads_min": 12}
        assert own["train"]["models"] == ["LightGBM", "MLP"]
        assert own["safety"]["clipped_min"] == -1000.0

        def comment(mapping, key: str) -> str:
            return mapping.ca.items[key][2].value.strip()

        assert comment(draft["families"]["lightgbm"], "num_leaves") == (
            "# audit_tree/lightgbm_trainer.py:5 constant; also audit_tree/lightgbm_trainer.py:12"
        )
        assert comment(draft["env"], "OMP_NUM_THREADS") == (
            "# audit_tree/run.sh:6 env_write; also audit_tree/train.py:7, audit_tree/train.py:32 = 8"
        )
        assert comment(own["safety"], "nan_ratio_threshold") == "# audit_tree/safety.py:8 threshold in check"

    def test_tkplan_validate_accepts_the_draft_as_written(self, workdir: Path) -> None:
        from tkplan.cli import main

        run("audit_tree", "--emit-profile", "draft.yaml")
        result = CliRunner().invoke(main, ["validate", "--hermetic", "draft.yaml"],
                                    env={"TKPLAN_CACHE_DIR": str(workdir / "cache")})

        assert result.exit_code == 0, result.output
        assert result.output.startswith("valid: base → draft.yaml")
        explained = CliRunner().invoke(main, ["explain", "project.train.models", "--hermetic", "draft.yaml"])
        assert explained.output.splitlines()[0] == 'project.train.models = ["LightGBM", "MLP"]'

    def test_values_already_in_the_profiles_are_left_out(self, workdir: Path) -> None:
        run("audit_tree", "--profiles", "audit_profiles", "--emit-profile", "draft.yaml")

        draft = YAML(typ="safe").load(Path("draft.yaml").read_text(encoding="utf-8"))
        assert "num_leaves" not in draft["families"]["lightgbm"]
        assert "determinism" not in draft and "gpu" not in draft and "MKL_NUM_THREADS" not in draft["env"]
        assert draft["env"]["EPOCHS"] == "50"


class TestBaseline:
    def test_check_fails_only_on_findings_not_in_the_baseline(self, workdir: Path) -> None:
        """Lines moved above a finding keep it known; a new value is new; exit 1 only then."""
        wrote = run("audit_tree", "--baseline", "baseline.json", "--write-baseline")
        assert wrote.exit_code == 0
        fingerprints = json.loads(Path("baseline.json").read_text(encoding="utf-8"))
        assert len(fingerprints) == len(EXPECTED)
        assert fingerprints == sorted(fingerprints)
        assert "audit_tree/safety.py:threshold:check:nan_ratio:" in "\n".join(fingerprints)

        clean = run("audit_tree", "--baseline", "baseline.json", "--check")
        assert clean.exit_code == 0
        assert clean.stdout.splitlines()[-1] == (
            f"0 findings in 9 files ({len(EXPECTED)} more accepted by the baseline), 2 skipped"
        )

        safety = Path("audit_tree/safety.py")
        safety.write_text('"""Moved down."""\n\n\n' + safety.read_text(encoding="utf-8"), encoding="utf-8")
        assert run("audit_tree", "--baseline", "baseline.json", "--check").exit_code == 0

        with safety.open("a", encoding="utf-8") as fh:
            fh.write("MAX_NAN_RATIO = 0.2\n")
        gate = run("audit_tree", "--baseline", "baseline.json", "--check", "--format", "json")
        assert gate.exit_code == 1
        assert [(f["key"], f["value"]) for f in json.loads(gate.stdout)["findings"]] == [("MAX_NAN_RATIO", 0.2)]
        assert "tkplan audit --check: 1 finding(s) not in the baseline" in gate.stderr

    def test_a_changed_value_is_new(self, workdir: Path) -> None:
        run("audit_tree", "--baseline", "baseline.json", "--write-baseline")
        train = Path("audit_tree/train.py")
        train.write_text(train.read_text(encoding="utf-8").replace("DEFAULT_EPOCHS = 50", "DEFAULT_EPOCHS = 80"))

        gate = run("audit_tree", "--baseline", "baseline.json", "--check", "--format", "json")

        assert gate.exit_code == 1
        assert [(f["key"], f["value"]) for f in json.loads(gate.stdout)["findings"]] == [("DEFAULT_EPOCHS", 80)]

    def test_check_without_a_baseline_fails_on_any_finding(self, workdir: Path) -> None:
        assert run("audit_tree", "--check").exit_code == 1
        assert run("audit_tree/near_misses.py", "--check").exit_code == 0

    def test_a_missing_or_malformed_baseline_is_a_bad_invocation(self, workdir: Path) -> None:
        missing = run("audit_tree", "--baseline", "none.json", "--check")
        Path("bad.json").write_text('{"not": "a list"}', encoding="utf-8")
        malformed = run("audit_tree", "--baseline", "bad.json", "--check")

        assert missing.exit_code == 2
        assert "none.json: baseline file not found; create it with --write-baseline" in missing.stderr
        assert malformed.exit_code == 2
        assert "a baseline must be a JSON list of fingerprint strings" in malformed.stderr


class TestInvocation:
    def test_a_missing_path_exits_2(self, workdir: Path) -> None:
        result = run("no_such_dir")

        assert result.exit_code == 2
        assert "'no_such_dir' does not exist" in result.stderr

    def test_kind_and_keep_options(self, workdir: Path) -> None:
        result = run("audit_tree/train.py", "--kind", "argparse_default", "--keep", "bool_defaults", "--format", "json")

        assert [(f["key"], f["value"]) for f in json.loads(result.stdout)["findings"]] == [
            ("epochs", 50), ("seq_lookback", 64), ("dry_run", False),
        ]

    def test_an_output_that_cannot_be_written_is_a_bad_invocation_and_nothing_is_left_behind(
        self, workdir: Path
    ) -> None:
        """A draft profile, a baseline or a report in a missing directory: exit 2 naming the option."""
        for option in ("--emit-profile", "--output"):
            result = run("audit_tree", option, "missing/out.txt")

            assert result.exit_code == 2
            assert (f"Invalid value for {option}: cannot write missing/out.txt: No such file or directory"
                    in result.stderr)
        baseline = run("audit_tree", "--baseline", "missing/b.json", "--write-baseline")
        assert baseline.exit_code == 2
        assert "Invalid value for --baseline: cannot write missing/b.json" in baseline.stderr
        assert not Path("missing").exists()

    def test_written_files_get_the_usual_mode(self, workdir: Path) -> None:
        run("audit_tree", "--emit-profile", "draft.yaml", "--baseline", "b.json", "--write-baseline", "-o", "r.txt")

        umask = os.umask(0)
        os.umask(umask)
        for name in ("draft.yaml", "b.json", "r.txt"):
            assert Path(name).stat().st_mode & 0o777 == 0o666 & ~umask

    def test_output_is_deterministic(self, workdir: Path) -> None:
        first = run("audit_tree", "--format", "json", "--workers", "1").stdout
        second = run("audit_tree", "--format", "json", "--workers", "2").stdout

        assert first == second


class TestPyprojectSettings:
    def test_settings_come_from_tool_tkplan_audit(self, workdir: Path) -> None:
        Path("pyproject.toml").write_text(
            "[project]\nname = 'x'\n\n"
            "[tool.tkplan.audit]\n"
            "exclude = ['model_fun', '*.sh']\n"
            "kinds = ['signature_default', 'constant']\n"
            "disable-noise = ['bool_defaults']\n"
            "baseline = 'audit-baseline.json'\n",
            encoding="utf-8",
        )

        result = run("audit_tree", "--format", "json", "--baseline", "none-yet.json", "--write-baseline")
        report = json.loads(Path("none-yet.json").read_text(encoding="utf-8"))
        listed = json.loads(run("audit_tree", "--format", "json", "--write-baseline").stdout)

        assert result.exit_code == 0
        assert sorted({fp.split(":")[1] for fp in report}) == ["constant", "signature_default"]
        assert "audit_tree/lightgbm_trainer.py:signature_default:LightGBMTrainer.__init__:debug:" in "\n".join(report)
        assert not any("model_fun" in fp or "run.sh" in fp for fp in report)
        assert Path("audit-baseline.json").is_file()
        assert listed["summary"]["known"] == len(report)

    def test_an_unknown_setting_is_a_usage_error_with_a_suggestion(self, workdir: Path) -> None:
        Path("pyproject.toml").write_text("[tool.tkplan.audit]\nexcludes = ['x']\n", encoding="utf-8")

        result = run("audit_tree")

        assert result.exit_code == 2
        assert "unknown key 'excludes' in [tool.tkplan.audit]; did you mean 'exclude'?" in result.stderr

    def test_config_option_points_at_a_pyproject(self, workdir: Path) -> None:
        Path("conf").mkdir()
        Path("conf/pyproject.toml").write_text("[tool.tkplan.audit]\nkinds = ['clamp']\n", encoding="utf-8")

        result = run("audit_tree", "--config", "conf/pyproject.toml", "--format", "json")

        assert {f["kind"] for f in json.loads(result.stdout)["findings"]} == {"clamp"}
