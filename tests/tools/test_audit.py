"""The audit library: `tkplan.tools.audit.audit` on a fixture tree with every kind and its near-misses."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

import tkplan.tools.audit as audit_api
from tkplan.errors import AuditError
from tkplan.tools.audit import AuditSettings, Finding, Skipped, audit, load_profiles, mark_findings

EXPECTED = [
    ("audit_tree/ignored.py:3:1", "constant", "LEARNING_RATE", 0.001, "", "ignored.learning_rate"),
    ("audit_tree/ignored.py:5:1", "constant", "PATIENCE", 5, "", "ignored.patience"),
    ("audit_tree/lightgbm_trainer.py:5:1", "constant", "NUM_LEAVES", 96, "", "families.lightgbm.num_leaves"),
    ("audit_tree/lightgbm_trainer.py:10:51", "signature_default", "learning_rate", 0.03, "LightGBMTrainer.__init__",
     "families.lightgbm.learning_rate"),
    ("audit_tree/lightgbm_trainer.py:12:46", "setdefault", "num_leaves", 96, "LightGBMTrainer.__init__",
     "families.lightgbm.num_leaves"),
    ("audit_tree/lightgbm_trainer.py:13:52", "setdefault", "feature_fraction", 0.75, "LightGBMTrainer.__init__",
     "families.lightgbm.feature_fraction"),
    ("audit_tree/lightgbm_trainer.py:14:55", "get_default", "max_depth", 8, "LightGBMTrainer.__init__",
     "families.lightgbm.max_depth"),
    ("audit_tree/lightgbm_trainer.py:15:62", "get_default", "num_threads", 4, "LightGBMTrainer.__init__",
     "run.threads"),
    ("audit_tree/lightgbm_trainer.py:18:67", "constructor_kwarg", "test_size", 0.2, "LightGBMTrainer.fit",
     "families.lightgbm.train_test_split.test_size"),
    ("audit_tree/lightgbm_trainer.py:18:85", "constructor_kwarg", "random_state", 42, "LightGBMTrainer.fit",
     "families.lightgbm.train_test_split.random_state"),
    ("audit_tree/lightgbm_trainer.py:19:48", "constructor_kwarg", "n_estimators", 1000, "LightGBMTrainer.fit",
     "families.lightgbm.lgbm_regressor.n_estimators"),
    ("audit_tree/lightgbm_trainer.py:19:71", "constructor_kwarg", "min_child_weight", 0.5, "LightGBMTrainer.fit",
     "families.lightgbm.lgbm_regressor.min_child_weight"),
    ("audit_tree/lightgbm_trainer.py:24:77", "constructor_kwarg", "stopping_rounds", 50, "LightGBMTrainer.fit",
     "families.lightgbm.early_stopping.stopping_rounds"),
    ("audit_tree/lightgbm_trainer.py:29:50", "get_default", "early_stopping_rounds", 50, "legacy_trainer",
     "families.lightgbm.early_stopping_rounds"),
    ("audit_tree/lightgbm_trainer.py:30:56", "get_default", "bagging_fraction", 0.75, "legacy_trainer",
     "families.lightgbm.bagging_fraction"),
    ("audit_tree/model_fun/xgb_trainer.py:7:44", "constructor_kwarg", "lr", 0.001, "XGBTrainer.build",
     "families.xgboost.adamw.lr"),
    ("audit_tree/model_fun/xgb_trainer.py:7:63", "constructor_kwarg", "weight_decay", 0.0, "XGBTrainer.build",
     "families.xgboost.adamw.weight_decay"),
    ("audit_tree/model_fun/xgb_trainer.py:8:74", "constructor_kwarg", "patience", 5, "XGBTrainer.build",
     "families.xgboost.reduce_lr_on_plateau.patience"),
    ("audit_tree/model_fun/xgb_trainer.py:8:84", "constructor_kwarg", "factor", 0.5, "XGBTrainer.build",
     "families.xgboost.reduce_lr_on_plateau.factor"),
    ("audit_tree/model_fun/xgb_trainer.py:8:96", "constructor_kwarg", "min_lr", 1e-06, "XGBTrainer.build",
     "families.xgboost.reduce_lr_on_plateau.min_lr"),
    ("audit_tree/run.sh:4:10", "shell_default", "THREADS", "4", "", "run.threads"),
    ("audit_tree/run.sh:5:8", "shell_default", "EPOCHS", "50", "", "env.EPOCHS"),
    ("audit_tree/run.sh:6:8", "env_write", "OMP_NUM_THREADS", "1", "", "env.OMP_NUM_THREADS"),
    ("audit_tree/run.sh:6:26", "env_write", "MKL_NUM_THREADS", "1", "", "env.MKL_NUM_THREADS"),
    ("audit_tree/run.sh:10:52", "shell_default", "LOOKBACK", "64", "", "env.LOOKBACK"),
    ("audit_tree/safety.py:8:20", "threshold", "nan_ratio", 0.1, "check", "safety.nan_ratio_threshold"),
    ("audit_tree/safety.py:16:8", "threshold", "score", 0.5, "check", "safety.score_threshold"),
    ("audit_tree/safety.py:16:29", "threshold", "score", 0.9, "check", "safety.score_threshold"),
    ("audit_tree/safety.py:18:19", "clamp", "threads", 12, "check", "run.threads_min"),
    ("audit_tree/safety.py:19:30", "clamp", "num_threads", 8, "check", "run.threads_max"),
    ("audit_tree/safety.py:20:30", "clamp", "clipped", -1000.0, "check", "safety.clipped_min"),
    ("audit_tree/safety.py:20:36", "clamp", "clipped", 1000.0, "check", "safety.clipped_max"),
    ("audit_tree/safety.py:21:41", "clamp", "cpu_count", 2, "check", "run.threads_fallback"),
    ("audit_tree/safety.py:25:30", "signature_default", "cap_sigma", 15.0, "cap_targets", "safety.cap_sigma"),
    ("audit_tree/safety.py:25:39", "signature_default", "lo", -40.0, "cap_targets", "safety.lo"),
    ("audit_tree/safety.py:25:49", "signature_default", "hi", 40.0, "cap_targets", "safety.hi"),
    ("audit_tree/safety.py:30:35", "threshold", "temperature", 25.5, "season", "safety.temperature_threshold"),
    ("audit_tree/settings.yaml:3:3", "config_file", "run.threads", 16, "", "run.threads"),
    ("audit_tree/settings.yaml:5:3", "config_file", "model.num_leaves", 127, "", "settings.model.num_leaves"),
    ("audit_tree/train.py:6:36", "env_default", "THREADS", "4", "", "run.threads"),
    ("audit_tree/train.py:7:33", "env_write", "OMP_NUM_THREADS", "1", "", "env.OMP_NUM_THREADS"),
    ("audit_tree/train.py:8:41", "env_write", "PYTHONHASHSEED", "42", "", "determinism.python_hash_seed"),
    ("audit_tree/train.py:10:47", "env_default", "CUDA_VISIBLE_DEVICES", "0", "", "gpu.devices"),
    ("audit_tree/train.py:12:1", "constant", "DEFAULT_EPOCHS", 50, "", "train.epochs"),
    ("audit_tree/train.py:13:1", "constant", "MODELS", ("LightGBM", "MLP"), "", "train.models"),
    ("audit_tree/train.py:19:30", "env_write", "MKL_NUM_THREADS", "1", "child_env", "env.MKL_NUM_THREADS"),
    ("audit_tree/train.py:21:80", "env_write", "NUMEXPR_NUM_THREADS", "1", "child_env", "env.NUMEXPR_NUM_THREADS"),
    ("audit_tree/train.py:27:55", "argparse_default", "epochs", 50, "main", "train.epochs"),
    ("audit_tree/train.py:28:61", "argparse_default", "seq_lookback", 64, "main", "train.seq_lookback"),
    ("audit_tree/train.py:32:47", "env_default", "OMP_NUM_THREADS", 8, "main", "env.OMP_NUM_THREADS"),
    ("audit_tree/trainer_loop.py:6:1", "constant", "BLAS_THREADS_DEFAULT", 1, "", "run.threads"),
    ("audit_tree/trainer_loop.py:10:35", "process_setting", "precision", 4, "train", "trainer_loop.precision"),
    ("audit_tree/trainer_loop.py:11:38", "process_setting", "benchmark", True, "train", "trainer_loop.benchmark"),
    ("audit_tree/trainer_loop.py:13:17", "fallback", "limit", 500, "train", "trainer_loop.limit"),
    ("audit_tree/trainer_loop.py:15:16", "local", "patience", 6, "train", "trainer_loop.patience"),
    ("audit_tree/trainer_loop.py:16:23", "positional_arg", "dropout", 0.3, "train", "trainer_loop.dropout"),
    ("audit_tree/trainer_loop.py:17:30", "config_dict", "learning_rate", 0.0003, "train", "trainer_loop.learning_rate"),
    ("audit_tree/trainer_loop.py:18:59", "call_kwarg", "max_norm", 0.5, "train", "trainer_loop.max_norm"),
    ("audit_tree/trainer_loop.py:18:79", "call_kwarg", "grad_clip_norm", 2.0, "train", "trainer_loop.grad_clip_norm"),
    ("audit_tree/trainer_loop.py:21:26", "threshold", "loss", 0.0001, "train", "trainer_loop.loss_tolerance"),
]

EXPECTED_SKIPPED = (
    Skipped("audit_tree/broken.py", "syntax error at line 1: invalid syntax"),
    Skipped("audit_tree/latin1.py", "not valid UTF-8 text (byte 5); declare the encoding or re-save as UTF-8"),
)


def rows(findings: tuple[Finding, ...]) -> list[tuple]:
    return [(f.location, f.kind, f.key, f.value, f.scope, f.suggested_key) for f in findings]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class TestAudit:
    def test_reports_every_kind_in_the_fixture_tree_and_no_near_miss(self, workdir: Path) -> None:
        """Each kind is found with location, key, value, scope and suggested key; near-misses are not."""
        result = audit(["audit_tree"])

        assert rows(result.findings) == EXPECTED
        assert {f.kind for f in result.findings} == set(audit_api.KINDS)
        assert all(f.status == "unchecked" for f in result.findings)

    def test_bad_files_are_skipped_with_a_reason(self, workdir: Path) -> None:
        """A syntax error and invalid UTF-8 are reported as skipped; the other files are scanned."""
        result = audit(["audit_tree"])

        assert result.skipped == EXPECTED_SKIPPED
        assert result.files == 9

    def test_an_unknown_kind_in_an_ignore_comment_is_a_note(self, workdir: Path) -> None:
        """`# tkplan: ignore[constnat]` silences nothing, and says so."""
        result = audit(["audit_tree"])

        assert result.notes == ("audit_tree/ignored.py: line 5: unknown kind 'constnat' in a tkplan: ignore comment",)

    def test_output_does_not_depend_on_the_pool(self, workdir: Path) -> None:
        """A process pool with one file per task gives the same result as the serial scan."""
        serial = audit(["audit_tree"], settings=AuditSettings(workers=1))
        pooled = audit(["audit_tree"], settings=AuditSettings(workers=2, serial_below=0, chunk_files=1))

        assert pooled == serial

    def test_a_missing_path_is_an_audit_error(self, workdir: Path) -> None:
        with pytest.raises(AuditError, match="nope: no such file or directory"):
            audit(["nope"])

    def test_a_single_file_may_be_given(self, workdir: Path) -> None:
        result = audit(["audit_tree/model_fun/xgb_trainer.py"])

        assert [f.key for f in result.findings] == ["lr", "weight_decay", "patience", "factor", "min_lr"]

    def test_a_named_non_source_file_is_skipped(self, workdir: Path) -> None:
        result = audit(["audit_tree/notes.txt"])

        reason = "not a Python (.py), shell (.sh, .bash) or config (.yaml, .yml, .json, .toml) file"
        assert result.skipped == (Skipped("audit_tree/notes.txt", reason),)


class TestSettings:
    def test_kinds_limit_what_is_reported(self, workdir: Path) -> None:
        result = audit(["audit_tree"], settings=AuditSettings(kinds={"clamp"}))

        assert [r for r in rows(result.findings)] == [r for r in EXPECTED if r[1] == "clamp"]

    def test_a_noise_filter_can_be_switched_off(self, workdir: Path) -> None:
        """Without `bool_defaults`, `debug=False` and a flag's default are reported; without `logging`, the TF
        log level."""
        noise = AuditSettings().noise - {"bool_defaults", "logging"}
        result = audit(["audit_tree/lightgbm_trainer.py", "audit_tree/train.py"], settings=AuditSettings(noise=noise))

        extra = [row for row in rows(result.findings) if row not in EXPECTED]
        assert extra == [
            ("audit_tree/lightgbm_trainer.py:10:74", "signature_default", "debug", False, "LightGBMTrainer.__init__",
             "families.lightgbm.debug"),
            ("audit_tree/train.py:9:38", "env_write", "TF_CPP_MIN_LOG_LEVEL", "3", "", "logging.tf_log_level"),
            ("audit_tree/train.py:30:67", "argparse_default", "dry_run", False, "main", "train.dry_run"),
        ]

    def test_without_the_structural_filter_layouts_and_sizes_are_reported(self, workdir: Path) -> None:
        """`batch_first=True`, `padding="same"`, `dtype=`, `x.ndim > 2`: kept out only by the `structural` filter."""
        noise = AuditSettings().noise - {"structural"}
        result = audit(["audit_tree/near_misses.py"], settings=AuditSettings(noise=noise))

        assert [(f.line, f.kind, f.key, f.value) for f in result.findings] == [
            (29, "constructor_kwarg", "batch_first", True),
            (30, "constructor_kwarg", "padding", "same"),
            (31, "constructor_kwarg", "batch_first", True),
            (43, "threshold", "ndim", 2),
            (43, "threshold", "shape", 10),
            (43, "threshold", "len", 3),
            (54, "constructor_kwarg", "name", "head"),
        ]

    def test_exclude_globs_leave_files_out(self, workdir: Path) -> None:
        result = audit(["audit_tree"], settings=AuditSettings(exclude=("model_fun", "*.sh")))

        assert {f.path for f in result.findings} == {
            "audit_tree/ignored.py", "audit_tree/lightgbm_trainer.py", "audit_tree/safety.py",
            "audit_tree/settings.yaml", "audit_tree/train.py", "audit_tree/trainer_loop.py",
        }

    def test_extra_constructors_and_receivers(self, tmp_path: Path) -> None:
        source = write(tmp_path / "job.py", 'm = MyModel(depth=3)\nd = knobs.get("width", 64)\n')
        plain = audit([source])
        tuned = audit([source], settings=AuditSettings(constructors={"MyModel"}, config_receivers={"knobs"}))

        assert plain.findings == ()
        assert [(f.kind, f.key, f.value, f.suggested_key) for f in tuned.findings] == [
            ("constructor_kwarg", "depth", 3, "job.my_model.depth"),
            ("get_default", "width", 64, "job.width"),
        ]

    def test_unknown_kind_names_are_refused(self) -> None:
        with pytest.raises(ValueError, match="kinds: unknown kind 'constants'"):
            AuditSettings(kinds={"constants"})


class TestRobustness:
    def test_symlink_loops_broken_links_and_huge_files(self, tmp_path: Path) -> None:
        """Loops, dangling links and oversized files are skipped with a reason, never a crash or a hang."""
        root = tmp_path / "tree"
        write(root / "pkg" / "mod.py", "LIMIT = 5\n")
        write(root / "big.py", "X = 2\n" * 100)
        (root / "pkg" / "loop").symlink_to(root, target_is_directory=True)
        (root / "pkg" / "self").symlink_to(root / "pkg" / "self")
        (root / "dangling.py").symlink_to(root / "missing.py")
        os.chdir(tmp_path)

        result = audit(["tree"], settings=AuditSettings(max_file_bytes=100))

        assert rows(result.findings) == [("tree/pkg/mod.py:1:1", "constant", "LIMIT", 5, "", "mod.limit")]
        assert result.skipped == (
            Skipped("tree/big.py", "larger than 100 bytes (600); see max-file-bytes"),
            Skipped("tree/dangling.py", "broken symbolic link"),
            Skipped("tree/pkg/loop", "symbolic link loop: points back to an enclosing directory"),
            Skipped("tree/pkg/self", "symbolic link loop"),
        )

    def test_encoding_declarations_are_honoured(self, tmp_path: Path) -> None:
        """A latin-1 file that says so is scanned, with columns in characters; a bogus declaration is skipped."""
        good = tmp_path / "good.py"
        good.write_bytes(b"# -*- coding: latin-1 -*-\nNAME = '\xe9t\xe9'; LIMIT = {'caf\xe9': 3}\n")
        bogus = tmp_path / "bogus.py"
        bogus.write_bytes(b"# -*- coding: klingon -*-\nX = 3\n")

        result = audit([good, bogus])

        assert [(f.line, f.col, f.key, f.value) for f in result.findings] == [
            (2, 1, "NAME", "été"),
            (2, 15, "LIMIT", {"café": 3}),
        ]
        assert [s.reason.split(":")[0] for s in result.skipped] == ["bad encoding declaration"]

    def test_null_bytes_and_deep_nesting_do_not_crash(self, tmp_path: Path) -> None:
        """Null bytes and over-nested brackets are skipped; a long chain the parser accepts is scanned."""
        write(tmp_path / "nul.py", "X = 1\x00\n")
        write(tmp_path / "nested.py", "Y = " + "(" * 300 + "1" + ")" * 300 + "\n")
        write(tmp_path / "chain.py", "def f(x):\n    return x" + " + x" * 900 + " > 0.5\n")
        os.chdir(tmp_path)

        result = audit(["."])

        assert [(s.path, s.reason.split(":")[0]) for s in result.skipped] == [
            ("nested.py", "syntax error at line 1"),
            ("nul.py", "syntax error"),
        ]
        col = len("    return x" + " + x" * 900 + " > ") + 1
        assert rows(result.findings) == [(f"chain.py:2:{col}", "threshold", "value", 0.5, "f", "chain.value_threshold")]


class TestProfiles:
    def test_findings_are_marked_not_centralised_duplicate_or_drift(self, workdir: Path) -> None:
        """Legacy variables meet their keys (``THREADS`` → ``run.threads``), read as tkplan reads them
        (``CUDA_VISIBLE_DEVICES="0"`` is ``gpu.devices: [0]``); other variables meet the ``env`` section."""
        result = audit(["audit_tree"], profiles=["audit_profiles"])

        marked = [
            (f.location, f.status, f.profile_key, f.profile_value, f.profile_origin)
            for f in result.findings
            if f.status != "not_centralised"
        ]
        assert marked == [
            ("audit_tree/lightgbm_trainer.py:5:1", "duplicate", "families.lightgbm.num_leaves", 96,
             "audit_profiles/families/lightgbm.yaml:3"),
            ("audit_tree/lightgbm_trainer.py:10:51", "drift", "families.lightgbm.learning_rate", 0.05,
             "audit_profiles/families/lightgbm.yaml:6"),
            ("audit_tree/lightgbm_trainer.py:12:46", "duplicate", "families.lightgbm.num_leaves", 96,
             "audit_profiles/families/lightgbm.yaml:3"),
            ("audit_tree/lightgbm_trainer.py:14:55", "drift", "families.lightgbm.max_depth", 6,
             "audit_profiles/families/lightgbm.yaml:4"),
            ("audit_tree/lightgbm_trainer.py:15:62", "drift", "run.threads", "auto", "audit_profiles/base.yaml:9"),
            ("audit_tree/lightgbm_trainer.py:19:48", "duplicate", "families.lightgbm.n_estimators", 1000,
             "audit_profiles/families/lightgbm.yaml:5"),
            ("audit_tree/run.sh:4:10", "drift", "run.threads", "auto", "audit_profiles/base.yaml:9"),
            ("audit_tree/run.sh:6:26", "duplicate", "env.MKL_NUM_THREADS", "1", "audit_profiles/base.yaml:3"),
            ("audit_tree/safety.py:8:20", "duplicate", "safety.nan_ratio_threshold", 0.1,
             "audit_profiles/base.yaml:11"),
            ("audit_tree/settings.yaml:3:3", "drift", "run.threads", "auto", "audit_profiles/base.yaml:9"),
            ("audit_tree/train.py:6:36", "drift", "run.threads", "auto", "audit_profiles/base.yaml:9"),
            ("audit_tree/train.py:8:41", "drift", "determinism.python_hash_seed", 7, "audit_profiles/base.yaml:5"),
            ("audit_tree/train.py:10:47", "duplicate", "gpu.devices", (0,), "audit_profiles/base.yaml:7"),
            ("audit_tree/train.py:19:30", "duplicate", "env.MKL_NUM_THREADS", "1", "audit_profiles/base.yaml:3"),
            ("audit_tree/trainer_loop.py:6:1", "drift", "run.threads", "auto", "audit_profiles/base.yaml:9"),
        ]
        assert sum(f.status == "not_centralised" for f in result.findings) == len(EXPECTED) - len(marked)

    def test_numbers_and_numeric_strings_compare_equal(self, tmp_path: Path) -> None:
        """An env default "4" in code and `4` in a profile are the same value; "5" is drift."""
        index = load_profiles([write(tmp_path / "p.yaml", "env:\n  THREADS: 4\n  EPOCHS: 50\n")])
        findings = [
            Finding("run.sh", 1, 1, "shell_default", "THREADS", "4", "", "env.THREADS"),
            Finding("run.sh", 2, 1, "shell_default", "EPOCHS", "5", "", "env.EPOCHS"),
        ]

        marked = mark_findings(findings, index)

        assert [(f.status, f.profile_value, f.profile_origin) for f in marked] == [
            ("duplicate", 4, f"{tmp_path.as_posix()}/p.yaml:2"),
            ("drift", 50, f"{tmp_path.as_posix()}/p.yaml:3"),
        ]

    def test_unsafe_yaml_is_refused(self, tmp_path: Path) -> None:
        bad = write(tmp_path / "bad.yaml", "x: !!python/object/apply:os.system ['true']\n")

        with pytest.raises(AuditError, match=r"bad\.yaml: not a valid profile"):
            load_profiles([bad])

    def test_a_profile_must_be_a_mapping(self, tmp_path: Path) -> None:
        with pytest.raises(AuditError, match=r"list\.yaml: not a valid profile: .*must be a mapping"):
            load_profiles([write(tmp_path / "list.yaml", "- 1\n")])


def test_all_lists_the_public_names() -> None:
    public = {name for name in vars(audit_api) if not name.startswith("_")}
    assert sorted(audit_api.__all__) == sorted(public)


def test_findings_are_frozen() -> None:
    finding = Finding("a.py", 1, 1, "constant", "X", [1, 2], "", "a.x")

    assert finding.value == (1, 2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        finding.line = 2  # type: ignore[misc]
