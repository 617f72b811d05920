"""The kinds a hand audit of ML code finds: each reported exactly, and the near-misses that must stay quiet.

Setting names come from the shipped profiles and schemas (``num_leaves``, ``epochs``, ``patience``,
``timeout_s``...) plus the user's ``--profiles``: a literal whose name names no setting is not reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tkplan.tools.audit import AuditSettings, audit, load_project_config

ROOT = Path(__file__).resolve().parents[2]


def findings(tmp_path: Path, name: str, text: str, **kwargs: object) -> list[tuple]:
    """Audit one file written into ``tmp_path``; (line, kind, key, value, suggested key) per finding."""
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = audit([tmp_path / name], **kwargs)  # type: ignore[arg-type]
    assert result.skipped == ()
    return [(f.line, f.kind, f.key, f.value, f.suggested_key) for f in result.findings]


class TestSetDefaultAndGet:
    def test_noise_like_values_are_kept_when_the_key_names_a_setting(self, tmp_path: Path) -> None:
        """`1`, `-1`, `0` and `None` are defaults like any other when the key is a setting's name."""
        text = (
            "def init(cfg, params):\n"
            '    cfg.setdefault("subsample_freq", 1)\n'
            '    cfg.setdefault("early_stopping_rounds", None)\n'
            '    params.get("max_leaves", -1)\n'
            '    params.get("seed", 0)\n'
        )
        assert findings(tmp_path, "trainer.py", text) == [
            (2, "setdefault", "subsample_freq", 1, "trainer.subsample_freq"),
            (3, "setdefault", "early_stopping_rounds", None, "trainer.early_stopping_rounds"),
            (4, "get_default", "max_leaves", -1, "trainer.max_leaves"),
            (5, "get_default", "seed", 0, "trainer.seed"),
        ]

    def test_noise_like_values_of_other_keys_and_names_stay_quiet(self, tmp_path: Path) -> None:
        text = (
            "def init(cfg):\n"
            '    cfg.setdefault("history", [])\n'
            '    cfg.setdefault("retries", 1)\n'
            '    cfg.get("name", "lgbm")\n'
            '    cfg.get("cursor", None)\n'
        )
        assert findings(tmp_path, "trainer.py", text) == []


class TestCallKeywords:
    def test_a_keyword_that_names_a_setting_is_reported_on_any_call(self, tmp_path: Path) -> None:
        text = (
            "def main(model, x, y):\n"
            "    seed_everything(seed=7)\n"
            "    model.fit(x, y, epochs=60, batch_size=512)\n"
            "    nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)\n"
        )
        assert findings(tmp_path, "train.py", text) == [
            (2, "call_kwarg", "seed", 7, "train.seed"),
            (3, "call_kwarg", "epochs", 60, "train.epochs"),
            (3, "call_kwarg", "batch_size", 512, "train.batch_size"),
            (4, "call_kwarg", "max_norm", 0.5, "train.max_norm"),
        ]

    def test_the_users_profiles_add_setting_names(self, tmp_path: Path) -> None:
        """`workers` and `gpu_mem_mb` name settings once the user's profile holds them."""
        text = "def main():\n    seed_everything(workers=4)\n    return Budget(gpu_mem_mb=8192)\n"
        profile = tmp_path / "profiles" / "team.yaml"
        profile.parent.mkdir()
        profile.write_text("train:\n  workers: 2\n", encoding="utf-8")

        assert findings(tmp_path, "job.py", text) == [(3, "call_kwarg", "gpu_mem_mb", 8192, "job.gpu_mem_mb")]
        assert findings(tmp_path, "job.py", text, profiles=[profile.parent]) == [
            (2, "call_kwarg", "workers", 4, "job.workers"),
            (3, "call_kwarg", "gpu_mem_mb", 8192, "job.gpu_mem_mb"),
        ]
        assert findings(tmp_path, "job.py", text, settings=AuditSettings(vocabulary={"workers"}))[0][2] == "workers"

    def test_pyproject_adds_setting_names(self, tmp_path: Path) -> None:
        (tmp_path / "pyproject.toml").write_text('[tool.tkplan.audit]\nvocabulary = ["momentum"]\n', encoding="utf-8")

        settings = load_project_config(tmp_path / "pyproject.toml").settings

        assert findings(tmp_path, "opt.py", "def f():\n    make(momentum=0.9)\n", settings=settings) == [
            (2, "call_kwarg", "momentum", 0.9, "opt.momentum"),
        ]

    def test_api_keywords_switches_and_scoped_blocks_stay_quiet(self, tmp_path: Path) -> None:
        text = (
            "import json, os\n"
            "def save(obj, fh, x, path):\n"
            "    json.dump(obj, fh, indent=2)\n"
            "    os.makedirs(path, exist_ok=True)\n"
            "    x.mean(axis=0)\n"
            "    open(path, encoding='utf-8')\n"
            "    with np.errstate(over='ignore'):\n"
            "        pass\n"
            "    lookup(symbols=None, seed=1)\n"
        )
        assert findings(tmp_path, "io_utils.py", text) == []


class TestConfigDicts:
    def test_entries_whose_key_names_a_setting(self, tmp_path: Path) -> None:
        text = (
            "def options():\n"
            '    opts = {"learning_rate": 3e-4, "backend": "threads", "status": "ok", "verbose": -1}\n'
            '    opts["timeout_s"] = 900\n'
            '    opts["label"] = "run"\n'
            "    return opts\n"
        )
        assert findings(tmp_path, "policy.py", text) == [
            (2, "config_dict", "learning_rate", 0.0003, "policy.learning_rate"),
            (2, "config_dict", "backend", "threads", "policy.backend"),
            (3, "config_dict", "timeout_s", 900, "policy.timeout_s"),
        ]

    def test_name_tables_class_declarations_and_reported_values_stay_quiet(self, tmp_path: Path) -> None:
        """A table of names (and of names to modules), a class body's declarations, and a dict already reported
        whole; a dict that only holds a dotted name among its values is still a config dict."""
        text = (
            "class Adapter:\n"
            '    objectives = {"regression": "reg:squarederror", "binary": "binary:logistic"}\n'
            "def names():\n"
            '    return {"max_bin": "max_bin", "batch_norm": False}\n'
            'DEFAULTS = {"num_leaves": 63}\n'
            '_EXPORTS = {"Step": "pkg._plan", "epochs": "pkg._loop", "timeout_s": "pkg.run:timeout_s"}\n'
            'def model():\n'
            '    return {"backend": "tf.keras", "timeout_s": 900}\n'
        )
        assert findings(tmp_path, "adapter.py", text) == [
            (5, "constant", "DEFAULTS", {"num_leaves": 63}, "adapter.defaults"),
            (8, "config_dict", "backend", "tf.keras", "adapter.backend"),
            (8, "config_dict", "timeout_s", 900, "adapter.timeout_s"),
        ]


class TestFallbacks:
    def test_or_fallbacks_none_tests_and_setting_named_locals(self, tmp_path: Path) -> None:
        text = (
            "def train(limit=None, max_epochs=None, n=None):\n"
            "    if limit is None:\n"
            "        limit = 500\n"
            "    max_epochs = 40 if max_epochs is None else max_epochs\n"
            "    num_threads = n or 8\n"
            "    patience = 6\n"
            "    self.min_delta = 0.001\n"
        )
        assert findings(tmp_path, "loop.py", text) == [
            (3, "fallback", "limit", 500, "loop.limit"),
            (4, "fallback", "max_epochs", 40, "loop.max_epochs"),
            (5, "fallback", "num_threads", 8, "run.threads"),
            (6, "local", "patience", 6, "loop.patience"),
            (7, "local", "min_delta", 0.001, "loop.min_delta"),
        ]

    def test_accumulators_and_other_names_stay_quiet(self, tmp_path: Path) -> None:
        text = (
            "class Adapter:\n"
            "    backend = 'torch'\n"
            "def loop(items, name=None):\n"
            "    total_loss = 0.0\n"
            "    stale = 0\n"
            "    label = name or 'run'\n"
            "    retries = 3\n"
            "    if name is None:\n"
            "        name = 'x'\n"
            "    return total_loss, stale, label, retries\n"
        )
        assert findings(tmp_path, "loop.py", text) == [(9, "fallback", "name", "x", "loop.name")]


class TestPositionalArguments:
    def test_literal_numbers_of_layers_and_regularisers(self, tmp_path: Path) -> None:
        text = (
            "def build():\n"
            "    drop = nn.Dropout(0.3)\n"
            "    x = layers.GaussianNoise(0.1)\n"
            "    y = layers.Dense(128, kernel_regularizer=regularizers.l2(1e-4))\n"
            "    return nn.Conv1d(16, 32, 3)\n"
        )
        assert findings(tmp_path, "model.py", text) == [
            (2, "positional_arg", "dropout", 0.3, "model.dropout"),
            (3, "positional_arg", "gaussian_noise", 0.1, "model.gaussian_noise"),
            (4, "positional_arg", "dense", 128, "model.dense"),
            (4, "positional_arg", "l2", 0.0001, "model.l2"),
            (5, "positional_arg", "conv1d_1", 16, "model.conv1d_1"),
            (5, "positional_arg", "conv1d_2", 32, "model.conv1d_2"),
            (5, "positional_arg", "conv1d_3", 3, "model.conv1d_3"),
        ]

    def test_names_strings_and_plain_calls_stay_quiet(self, tmp_path: Path) -> None:
        text = (
            "def build(width):\n"
            "    a = nn.Linear(width, 1)\n"
            "    b = TensorBoard('logs')\n"
            "    c = np.zeros(3)\n"
            "    return round(a, 4), b, c, range(10)\n"
        )
        assert findings(tmp_path, "model.py", text) == []


class TestTolerances:
    def test_a_literal_added_to_the_other_side_of_a_comparison(self, tmp_path: Path) -> None:
        text = "def loop(loss, prev):\n    if loss > prev - 1e-4:\n        return True\n"
        assert findings(tmp_path, "loop.py", text) == [(2, "threshold", "loss", 0.0001, "loop.loss_tolerance")]

    def test_unit_conversions_and_sizes_stay_quiet(self, tmp_path: Path) -> None:
        text = (
            "def cap(timeout, budget_h, xs, n, i):\n"
            "    if timeout > budget_h * 3600:\n"
            "        pass\n"
            "    if len(xs) > n + 2:\n"
            "        pass\n"
            "    return i < n - 1\n"
        )
        assert findings(tmp_path, "limits.py", text) == []


class TestProcessSettings:
    def test_calls_and_attributes_that_set_the_whole_process(self, tmp_path: Path) -> None:
        text = (
            "import os\n"
            "BLAS_THREADS_DEFAULT = 1\n"
            "def apply():\n"
            "    np.set_printoptions(precision=4)\n"
            "    torch.set_num_interop_threads(1)\n"
            "    torch.manual_seed(0)\n"
            "    torch.backends.cudnn.benchmark = True\n"
            '    os.environ.setdefault("OMP_NUM_THREADS", "1")\n'
            '    os.environ["MKL_NUM_THREADS"] = str(BLAS_THREADS_DEFAULT)\n'
        )
        assert findings(tmp_path, "policy.py", text) == [
            (2, "constant", "BLAS_THREADS_DEFAULT", 1, "run.threads"),
            (4, "process_setting", "precision", 4, "policy.precision"),
            (5, "process_setting", "set_num_interop_threads", 1, "run.threads"),
            (6, "process_setting", "manual_seed", 0, "policy.manual_seed"),
            (7, "process_setting", "benchmark", True, "policy.benchmark"),
            (8, "env_write", "OMP_NUM_THREADS", "1", "env.OMP_NUM_THREADS"),
            (9, "env_write", "MKL_NUM_THREADS", "1", "env.MKL_NUM_THREADS"),
        ]

    def test_other_calls_and_constants_stay_quiet(self, tmp_path: Path) -> None:
        text = (
            "import os, warnings\n"
            "MODEL_FILE = 'model.txt'\n"
            "LOG_FORMAT = '%(message)s'\n"
            "RETRIES = 1\n"
            "def apply(path):\n"
            "    warnings.filterwarnings('ignore')\n"
            "    torch.save({}, path)\n"
            "    os.environ['OUT'] = path\n"
        )
        assert findings(tmp_path, "policy.py", text) == []


class TestConfigFiles:
    def test_each_leaf_of_yaml_json_and_toml_is_a_finding(self, tmp_path: Path) -> None:
        train = "model:\n  num_leaves: 127\n  tags: [a, b]\nrun:\n  threads: 16\n"
        assert findings(tmp_path, "conf/train.yaml", train) == [
            (2, "config_file", "model.num_leaves", 127, "train.model.num_leaves"),
            (3, "config_file", "model.tags", ("a", "b"), "train.model.tags"),
            (5, "config_file", "run.threads", 16, "run.threads"),
        ]
        assert findings(tmp_path, "conf/sweep.json", '{\n  "dropout": 0.25,\n  "epochs": 80\n}\n') == [
            (2, "config_file", "dropout", 0.25, "sweep.dropout"),
            (3, "config_file", "epochs", 80, "sweep.epochs"),
        ]
        assert findings(tmp_path, "conf/model.toml", "[transformer]\nd_model = 128\nheads = 4\n") == [
            (2, "config_file", "transformer.d_model", 128, "model.transformer.d_model"),
            (3, "config_file", "transformer.heads", 4, "model.transformer.heads"),
        ]

    def test_config_files_are_compared_with_the_profiles(self, tmp_path: Path) -> None:
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "train.yaml").write_text("run:\n  threads: 16\n", encoding="utf-8")
        (tmp_path / "profiles").mkdir()
        (tmp_path / "profiles" / "base.yaml").write_text("run:\n  threads: 8\n", encoding="utf-8")

        result = audit([tmp_path], profiles=[tmp_path / "profiles"])

        assert [(f.path.rsplit("/", 2)[-2:], f.status, f.profile_value) for f in result.findings] == [
            (["src", "train.yaml"], "drift", 8),
        ]

    def test_tool_files_data_and_schemas_are_not_config(self, tmp_path: Path) -> None:
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
        (tmp_path / ".github").mkdir()
        (tmp_path / ".github" / "ci.yml").write_text("on: push\n", encoding="utf-8")
        (tmp_path / "rows.json").write_text('[{"a": 1}]\n', encoding="utf-8")
        (tmp_path / "s.json").write_text('{"$schema": "x", "type": "object"}\n', encoding="utf-8")

        result = audit([tmp_path])

        assert (result.findings, result.skipped) == ((), ())

    def test_a_mapping_with_more_values_than_settings_have_is_data(self, tmp_path: Path) -> None:
        """A registry of 300 entries is data: listed as skipped with the limit to raise, no 300 findings."""
        (tmp_path / "registry.json").write_text(json.dumps({f"k{i}": i for i in range(300)}), encoding="utf-8")
        (tmp_path / "small.json").write_text(json.dumps({f"k{i}": i for i in range(3)}), encoding="utf-8")

        result = audit([tmp_path], settings=AuditSettings(max_config_leaves=2))
        wider = audit([tmp_path], settings=AuditSettings(max_config_leaves=3))

        assert [(s.path.rsplit("/", 1)[-1], s.reason) for s in result.skipped] == [
            ("registry.json", "more than 2 values: data, not configuration; see max-config-leaves"),
            ("small.json", "more than 2 values: data, not configuration; see max-config-leaves"),
        ]
        assert len(wider.findings) == 3
        assert audit([tmp_path]).skipped[0].reason.startswith("more than 200 values")

    def test_a_broken_config_file_is_skipped_with_a_reason(self, tmp_path: Path) -> None:
        (tmp_path / "bad.yaml").write_text("a: [1, 2\n", encoding="utf-8")

        (skipped,) = audit([tmp_path]).skipped

        assert skipped.reason.startswith("cannot read as configuration: ")


class TestHostileInput:
    def test_an_alias_bomb_in_profiles_fails_fast_with_a_clean_error(self, tmp_path: Path) -> None:
        """Nine lines that expand to 9**9 strings: refused by the planner's loader, exit 2, no traceback."""
        lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for prev, name in zip("abcdefgh", "bcdefghi", strict=False):
            lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (tmp_path / "job.py").write_text("x = 1\n", encoding="utf-8")

        done = subprocess.run(
            [sys.executable, "-m", "tkplan.cli", "audit", "job.py", "--profiles", "bomb.yaml"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )

        assert done.returncode == 2
        assert "bomb.yaml: not a valid profile" in done.stderr and "alias" in done.stderr
        assert "Traceback" not in done.stderr

    def test_deeply_nested_shell_defaults_are_scanned_in_one_pass(self, tmp_path: Path) -> None:
        """20,000 nested `${A:-` (once 105 s, a scan per `${`): the innermost literal default is found."""
        depth = 20_000
        (tmp_path / "deep.sh").write_text("echo " + "${A:-" * depth + "x" + "}" * depth + "\n", encoding="utf-8")

        done = subprocess.run(
            [sys.executable, "-m", "tkplan.cli", "audit", "deep.sh", "--format", "json"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )

        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        found = [(f["line"], f["col"], f["key"], f["value"]) for f in report["findings"]]
        assert found == [(1, 5 * depth + 1, "A", "x")]


@pytest.mark.parametrize("profiles", [[], ["profiles"]])
def test_the_labelled_corpus_meets_the_quality_targets(profiles: list[str]) -> None:
    """tools/bench/audit_quality.py's scoring on tests/tools/corpus: every literal line labelled; recall and
    precision at their targets with the shipped vocabulary alone, and with the team's profile."""
    from tkplan.tools.bench.audit_quality import (
        CORPUS,
        TARGET_PRECISION,
        coverage_gaps,
        read_labels,
        score,
    )

    labelled, labels = read_labels(CORPUS)
    assert coverage_gaps(CORPUS, labelled) == []
    settings = AuditSettings(exclude=("labels.yaml", "profiles"))
    result = audit([CORPUS.as_posix()], settings=settings, profiles=[CORPUS / p for p in profiles])
    outcome = score(result.findings, labels, CORPUS.as_posix())

    assert outcome.precision() >= TARGET_PRECISION
    assert outcome.recall() >= (0.95 if profiles else 0.9)
