"""The plan is a function of its inputs: same inputs → same bytes and hash; a semantic change → another hash.

Compiles go through the public API with a fixed `HardwareSpec`, so nothing depends on the machine running
the tests. ``plan_hash`` covers the semantic part (format, config, hardware, steps, schedule); ``inputs``
records the layers' sha256 and ``provenance`` their lines, so a reformatted profile gives the same hash with
different bytes there, and an input that changes nothing gives the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tkplan.errors import PlanError
from tkplan.planner import (
    CompileRequest,
    Gpu,
    HardwareSpec,
    Plan,
    compile_plan,
    plan_from_json,
    plan_to_json,
)
from tkplan.planner._overrides import ENV_PREFIX, LEGACY_ENV, PATH_ENV
from tkplan.planner._plan import canonical_json
from tkplan.planner._sources import shipped_dir

PROJECT = Path(__file__).parent.parent / "fixtures" / "profiles" / "project"
PROJECT_DATA: dict[str, Any] = YAML(typ="safe", pure=True).load((PROJECT / "tkplan.yaml").read_text())

HARDWARE = HardwareSpec(
    cpus_usable=8, cpus_logical=16, cores_physical=8, memory_mb=32768, memory_total_mb=65536,
    gpus=(Gpu(0, "GPU-0a1b2c3d-0000-4000-8000-000000000001", "NVIDIA A10", 22731, "8.6"),),
    gpu_driver="550.54.15", mps=False, platform="linux", machine="x86_64", cgroup=None)

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compile_in(cwd: Path, *words: str, env: dict[str, str] | None = None, hardware: HardwareSpec = HARDWARE) -> Plan:
    return compile_plan(CompileRequest(words=words, env=env or {}, cwd=cwd), hardware, "spec", "x")


@contextmanager
def project_copy(tkplan_yaml: str | None = None) -> Iterator[Path]:
    """A fresh copy of the fixture project, optionally with another ``tkplan.yaml`` text."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(PROJECT, root)
        if tkplan_yaml is not None:
            (root / "tkplan.yaml").write_text(tkplan_yaml)
        yield root


@pytest.fixture(scope="module")
def baseline() -> Plan:
    with project_copy() as root:
        return compile_in(root)


def semantic(plan: Plan) -> dict[str, Any]:
    """The plan without ``inputs`` and ``provenance``: what ``plan_hash`` covers, and the hash itself."""
    data = json.loads(plan_to_json(plan))
    return {k: v for k, v in data.items() if k not in ("inputs", "provenance")}


def settings_of(plan: Plan) -> dict[str, list[tuple[str, Any]]]:
    """Provenance without positions: which layer set which value, in order."""
    return {key: [(s["source"], s["value"]) for s in chain] for key, chain in plan.provenance.items()}


def get(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = config[part]
    return config


class TestSameInputsSameBytes:
    def test_from_two_working_directories(self, tmp_path):
        """A project copied to two places compiles to the same bytes: no path of this machine is in the plan."""
        one, two = tmp_path / "a" / "project", tmp_path / "b" / "deeper" / "project"
        shutil.copytree(PROJECT, one)
        shutil.copytree(PROJECT, two)
        first, second = plan_to_json(compile_in(one)), plan_to_json(compile_in(two))
        assert first == second
        assert str(tmp_path) not in first
        assert str(shipped_dir()) not in first

    def test_from_two_working_directories_on_the_command_line(self, tmp_path, monkeypatch):
        from click.testing import CliRunner

        from tkplan.cli import main

        spec = tmp_path / "box.yaml"
        spec.write_text((Path(__file__).parent.parent / "specs" / "laptop_2core.yaml").read_text())
        texts = []
        for where in ("a", "b/c"):
            cwd = tmp_path / where / "project"
            shutil.copytree(PROJECT, cwd)
            monkeypatch.chdir(cwd)
            result = CliRunner().invoke(main, ["compile", "--hermetic", "--hardware", str(spec), "-o", "plan.json"],
                                        env={"TKPLAN_CACHE_DIR": str(tmp_path / where / "cache")},
                                        catch_exceptions=False)
            assert result.exit_code == 0, result.output
            texts.append((cwd / "plan.json").read_bytes())
        assert texts[0] == texts[1]

    def test_in_interpreters_with_different_hash_seeds(self, tmp_path):
        """Nothing depends on set or dict iteration order of one process (``PYTHONHASHSEED``): all 20 families."""
        spec = Path(__file__).parent.parent / "specs" / "h100_16core.yaml"
        script = ("import sys; from tkplan.cli import main; "
                  f"main(['compile', 'h100_full', '--hermetic', '--no-cache', '--hardware', {str(spec)!r}, "
                  "'--format', 'json'])")
        outputs = set()
        for seed in ("0", "1", "4242"):
            env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
            env.update(PYTHONHASHSEED=seed, TKPLAN_CACHE_DIR=str(tmp_path / "cache"))
            proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            outputs.add(proc.stdout)
        assert len(outputs) == 1

    def test_plan_round_trips_through_json(self, baseline):
        assert plan_from_json(plan_to_json(baseline)) == baseline
        assert plan_to_json(plan_from_json(plan_to_json(baseline))) == plan_to_json(baseline)

    @EXAMPLES
    @given(name=st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True), value=st.text(max_size=20))
    def test_a_variable_tkplan_does_not_read_changes_nothing(self, baseline, name, value):
        assume(name not in LEGACY_ENV and name not in PATH_ENV and not name.startswith(ENV_PREFIX))
        assume("\x00" not in value)
        with project_copy() as root:
            plan = compile_in(root, env={name: value})
        assert plan_to_json(plan) == plan_to_json(baseline)


# -- semantic changes ----------------------------------------------------------------------------------------

def decimals(low: int, high: int, places: int = 3) -> st.SearchStrategy[float]:
    """Floats written with ``places`` decimals, from ``low`` to ``high`` thousandths (so YAML reads them exactly)."""
    return st.integers(low, high).map(lambda n: round(n / 10**places, places))


TARGETS = ["fwd_ret_5m", "fwd_ret_15m", "will_peak_5m"]
CONFIG_CHANGES = st.one_of(
    st.tuples(st.just("families.lightgbm.num_leaves"), st.integers(2, 131072)),
    st.tuples(st.just("families.lightgbm.learning_rate"), decimals(1, 1000)),
    st.tuples(st.just("families.lightgbm.n_estimators"), st.integers(1, 100_000)),
    st.tuples(st.just("families.lightgbm.lambda_l2"), decimals(0, 100_000)),
    st.tuples(st.just("families.ridge.alpha"), decimals(0, 100_000)),
    st.tuples(st.just("run.base_seed"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("campaign.seeds"), st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4, unique=True)),
    st.tuples(st.just("campaign.targets"), st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3, unique=True)),
    st.tuples(st.just("data.splits.val_ratio"), decimals(1, 500)),
    st.tuples(st.just("data.splits.test_ratio"), decimals(1, 500)),
    st.tuples(st.just("data.splits.purge_gap"), st.integers(0, 1000)),
    st.tuples(st.just("data.lookback"), st.integers(1, 1000)),
)

HARDWARE_CHANGES = st.one_of(
    st.builds(lambda n: {"cpus_usable": n}, st.integers(1, 16)),
    st.builds(lambda n: {"memory_mb": n}, st.integers(8192, 65536)),
    st.builds(lambda n: {"cores_physical": n}, st.integers(1, 16)),
    st.builds(lambda n: {"memory_total_mb": n}, st.integers(32768, 262144)),
    st.builds(lambda mb, cc: {"gpus": (attrs.evolve(HARDWARE.gpus[0], memory_mb=mb, compute_capability=cc),)},
              st.sampled_from([8192, 16384, 22731, 40960, 81559]), st.sampled_from(["7.5", "8.0", "8.6", "9.0"])),
    st.just({"gpus": ()}),
    st.sampled_from([{"platform": "darwin"}, {"machine": "aarch64"}, {"cgroup": "v2"}, {"gpu_driver": "535.104.05"}]),
)


def set_in_yaml(text: str, key: str, value: Any) -> str:
    """Edit ``tkplan.yaml`` the way a user would: set ``key`` to ``value``, keeping everything else."""
    yaml = YAML()  # round-trip: comments and order kept
    data = yaml.load(text)
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    from io import StringIO

    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()


class TestSemanticChangesChangeTheHash:
    @EXAMPLES
    @given(change=CONFIG_CHANGES, channel=st.sampled_from(["cli", "env", "file"]))
    def test_a_changed_value(self, baseline, change, channel):
        key, value = change
        assume(get(semantic(baseline)["config"], key) != value)
        text = json.dumps(value)  # JSON is YAML flow: the value as a user would type it
        words: tuple[str, ...] = ()
        env: dict[str, str] = {}
        tkplan_yaml = None
        if channel == "cli":
            words = (f"{key}={text}",)
        elif channel == "env":
            env = {ENV_PREFIX + key.replace(".", "__"): text}
        else:
            tkplan_yaml = set_in_yaml((PROJECT / "tkplan.yaml").read_text(), key, value)
        with project_copy(tkplan_yaml) as root:
            plan = compile_in(root, *words, env=env)
        assert get(semantic(plan)["config"], key) == value
        assert plan.plan_hash != baseline.plan_hash
        assert plan_from_json(plan_to_json(plan)) == plan

    @EXAMPLES
    @given(change=HARDWARE_CHANGES)
    def test_other_hardware(self, baseline, change):
        try:
            hardware = attrs.evolve(HARDWARE, **change)
        except (TypeError, ValueError):  # e.g. more physical cores than logical CPUs: not a machine
            assume(False)
        assume(hardware != HARDWARE)
        with project_copy() as root:
            plan = compile_in(root, hardware=hardware)
        assert plan.hardware == hardware
        assert plan.plan_hash != baseline.plan_hash

    @EXAMPLES
    @given(data=st.data())
    def test_an_edited_plan_is_refused(self, baseline, data):
        plan = json.loads(plan_to_json(baseline))
        step = data.draw(st.sampled_from(plan["steps"]), label="step")
        name = data.draw(st.sampled_from(sorted(step["params"])), label="param")
        new = data.draw(st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none()), label="value")
        assume(new != step["params"][name] or type(new) is not type(step["params"][name]))
        step["params"][name] = new
        with pytest.raises(PlanError, match=r"^plan\.json: plan_hash does not match its content: the plan was "
                                            r"edited after compiling"):
            plan_from_json(canonical_json(plan, indent=1) + "\n")

    def test_an_edit_in_the_json_text_is_refused(self, baseline):
        text = plan_to_json(baseline)
        edited = text.replace('"num_leaves": 48', '"num_leaves": 49', 1)
        assert edited != text
        with pytest.raises(PlanError, match="edited after compiling"):
            plan_from_json(edited, "plan.json")


# -- non-semantic changes -----------------------------------------------------------------------------------

COMMENT = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=30)


@st.composite
def rewritten_project_file(draw: st.DrawFn) -> str:
    """The fixture's ``tkplan.yaml`` written another way: key order, indentation, spacing, comments, float text."""
    indent = draw(st.integers(1, 6), label="indent")
    colon_space = " " * draw(st.integers(1, 3), label="space after colon")

    def scalar(value: Any) -> str:
        if isinstance(value, float):
            spellings = [repr(value), f"{value:e}", f"{value:.6f}", repr(value) + "0"]
            return draw(st.sampled_from([s for s in spellings if float(s) == value]), label="float")
        if isinstance(value, list):
            sep = draw(st.sampled_from([", ", ",", " , "]), label="list separator")
            return "[" + sep.join(scalar(v) for v in value) + "]"
        return json.dumps(value)

    def lines(mapping: dict[str, Any], depth: int) -> list[str]:
        out = []
        for key in draw(st.permutations(list(mapping)), label="key order"):
            pad = " " * (indent * depth)
            if draw(st.booleans(), label="comment above"):
                out.append(" " * draw(st.integers(0, 8)) + "# " + draw(COMMENT, label="comment"))
            if draw(st.booleans(), label="blank line above"):
                out.append(" " * draw(st.integers(0, 4)))
            value = mapping[key]
            if isinstance(value, dict):
                out.append(f"{pad}{key}:" + draw(st.sampled_from(["", "   ", "  # section"]), label="trailing"))
                out += lines(value, depth + 1)
            else:
                trailing = draw(st.sampled_from(["", "  ", "  # " + draw(COMMENT)]), label="trailing")
                out.append(f"{pad}{key}:{colon_space}{scalar(value)}{trailing}")
        return out

    return "\n".join(lines(PROJECT_DATA, 0)) + draw(st.sampled_from(["\n", "\n\n", ""]), label="end")


class TestNonSemanticChangesKeepTheHash:
    @EXAMPLES
    @given(text=rewritten_project_file())
    def test_the_same_settings_written_another_way(self, baseline, text):
        with project_copy(text) as root:
            plan = compile_in(root)
        assert plan.plan_hash == baseline.plan_hash
        assert semantic(plan) == semantic(baseline)
        assert settings_of(plan) == settings_of(baseline)
        project = next(layer for layer in plan.inputs.layers if layer.kind == "project")
        unchanged = text == (PROJECT / "tkplan.yaml").read_text()
        assert (project.sha256
                == next(layer.sha256 for layer in baseline.inputs.layers if layer.kind == "project")) == unchanged

    def test_a_comment_changes_inputs_and_positions_but_not_the_hash(self, baseline):
        original = (PROJECT / "tkplan.yaml").read_text()
        with project_copy("# tuned on 2024-05-01\n\n" + original) as root:
            plan = compile_in(root)
        assert plan.plan_hash == baseline.plan_hash
        assert plan_to_json(plan) != plan_to_json(baseline)
        assert plan.provenance["run.name"][-1]["line"] == baseline.provenance["run.name"][-1]["line"] + 2
