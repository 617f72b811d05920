"""Hostile configuration input through the real command line: every case ends in a located ``error:`` and a
documented exit code — never a traceback, a signal death (the C composer's stack), a hang (a FIFO) or a
file written outside the working directory.

Exit codes: 3 invalid configuration, 4 a plan the hardware cannot honour or a bad hardware spec.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tkplan.planner._overrides import LEGACY_ENV

TESTS = Path(__file__).parent
LAPTOP_SPEC = TESTS / "specs" / "laptop_2core.yaml"
H100_SPEC = TESTS / "specs" / "h100_16core.yaml"
H100_UUID = "GPU-5b2c3f0e-7a1d-4c8e-b6f2-91d0e4a7c3b5"
RIDGE = (TESTS / "fixtures" / "profiles" / "project" / "profiles" / "families" / "ridge.yaml").read_text()


def tkplan(cwd: Path, *args: str, env: Mapping[str, str] | Mapping[bytes, bytes] | None = None) -> tuple[int, str, str]:
    """Run ``tkplan ARGS`` in a fresh interpreter in ``cwd``; return (exit code, stdout, stderr).

    The environment is the test's own plus ``env``, without the developer's TKPLAN or legacy variables.
    A hang fails the test at the timeout instead of blocking it.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN") and k not in LEGACY_ENV}
    base["TKPLAN_CACHE_DIR"] = str(cwd / ".cache")
    full = {os.fsencode(k): os.fsencode(v) for k, v in [*base.items(), *(env or {}).items()]}  # bytes: any value
    done = subprocess.run([sys.executable, "-m", "tkplan.cli", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode >= 0, f"killed by signal {-done.returncode}"
    return done.returncode, done.stdout, done.stderr


def compile_(cwd: Path, *args: str, spec: Path | str = LAPTOP_SPEC, **kwargs) -> tuple[int, str]:
    """``tkplan compile --no-cache --hardware SPEC ARGS``: (exit code, stderr)."""
    code, _, err = tkplan(cwd, "compile", "--no-cache", "--hardware", str(spec), *args, **kwargs)
    return code, err


class TestDeepNesting:
    """Nesting is bounded before the recursive YAML composer sees the text: a located error, exit 3 (4: spec)."""

    def test_the_60000_bracket_profile(self, tmp_path):
        (tmp_path / "deep.yaml").write_text("a: " + "[" * 60000 + "]" * 60000 + "\n")
        code, err = compile_(tmp_path, "--hermetic", "./deep.yaml")
        assert (code, err) == (3, "error: deep.yaml:1:35: nested deeper than 32 levels (a profile holds a few levels "
                                  "of mappings and lists; flatten it)\n")

    def test_deep_block_nesting(self, tmp_path):
        (tmp_path / "deep.yaml").write_text("".join(" " * i + "k:\n" for i in range(2000)) + " " * 2000 + "v\n")
        code, err = compile_(tmp_path, "--hermetic", "./deep.yaml")
        assert (code, err) == (3, "error: deep.yaml:33:33: nested deeper than 32 levels (a profile holds a few levels "
                                  "of mappings and lists; flatten it)\n")

    def test_an_override(self, tmp_path):
        code, err = compile_(tmp_path, "--hermetic", "+run.x=" + "[" * 60000)
        assert code == 3
        assert err.startswith("error: cli:arg 1: cannot read value '[[[[[[[[[[")
        assert "nested" in err and err.count("\n") == 1

    def test_an_environment_variable(self, tmp_path):
        code, err = compile_(tmp_path, env={"TKPLAN__run__name": "{a: " * 25000})
        assert code == 3
        assert err.startswith("error: env:TKPLAN__run__name: cannot read value '{a: {a: {a: {a: {a: '…(100000 "
                              "characters): nested deeper than 32 levels")

    def test_a_hardware_spec(self, tmp_path):
        (tmp_path / "box.yaml").write_text("cpus_usable: " + "[" * 60000 + "\n")
        code, err = compile_(tmp_path, "--hermetic", spec="box.yaml")
        assert (code, err) == (4, "error: hardware spec box.yaml:1:45: nested deeper than 32 levels (a profile holds "
                                  "a few levels of mappings and lists; flatten it)\n")

    def test_nesting_through_aliases(self, tmp_path):
        lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 40)]
        (tmp_path / "alias.yaml").write_text("\n".join(lines) + "\n")
        code, err = compile_(tmp_path, "--hermetic", "./alias.yaml")
        assert (code, err) == (3, "error: alias.yaml:1:10: nested deeper than 32 levels through aliases "
                                  "(remove the nested aliases)\n")

    def test_a_key_path_of_5000_parts(self, tmp_path):
        code, err = compile_(tmp_path, "--hermetic", "+families.x." + ".".join(["a"] * 5000) + "=1")
        assert (code, err) == (3, "error: cli:arg 1: key path of 5002 parts, more than the 32 levels a configuration "
                                  "may nest (name an existing key)\n")

    def test_an_extends_chain_of_1000_files(self, tmp_path):
        for i in range(1000):
            (tmp_path / f"e{i}.yaml").write_text(f"extends: [./e{i + 1}.yaml]\n")
        (tmp_path / "e1000.yaml").write_text("run: {name: deep}\n")
        code, err = compile_(tmp_path, "--hermetic", "./e0.yaml")
        assert (code, err) == (3, "error: e31.yaml:1:11: `extends` chain longer than 32 profiles: e0.yaml → e1.yaml → "
                                  "e2.yaml → … → e32.yaml (extend fewer profiles, each holding more)\n")

    def test_nesting_within_the_bound_compiles(self, tmp_path):
        """A user family's parameters nested 30 levels under a 32-level value: 64 levels in all, planned."""
        (tmp_path / "ridge.yaml").write_text(RIDGE)
        shutil.copytree(TESTS / "fixtures" / "profiles" / "project" / "mytrainers", tmp_path / "mytrainers")
        deep = "+families.ridge." + ".".join(["a"] * 30) + "=" + "[" * 32 + "]" * 32
        code, _, err = tkplan(tmp_path, "compile", "--hermetic", "--no-cache", "--hardware", str(LAPTOP_SPEC),
                              "./ridge.yaml", "campaign.families=[ridge]", "campaign.targets=[fwd_ret_5m]", deep,
                              "-o", "plan.json")
        assert (code, err) == (0, "")
        assert json.loads((tmp_path / "plan.json").read_text())["steps"][0]["params"]["a"]["a"]["a"]


class TestNumbers:
    """NaN, infinities and absurd magnitudes are refused where they were written; limits never round to nothing."""

    @pytest.mark.parametrize(("args", "env", "message"), [
        (["limits.memory_cap_gb=.nan"], {}, "cli:arg 1: expected a finite number, got nan @ limits.memory_cap_gb"),
        (["families.lightgbm.learning_rate=.inf"], {},
         "cli:arg 1: expected a finite number, got inf @ families.lightgbm.learning_rate"),
        (["--set", "limits.memory_threshold=-.inf"], {},
         "cli:--set 1: expected a finite number, got -inf @ limits.memory_threshold"),
        ([], {"TKPLAN__data__synthetic__noise": ".NaN"},
         "env:TKPLAN__data__synthetic__noise: expected a finite number, got nan @ data.synthetic.noise"),
        ([], {"TRAINER_CHILD_MEMCAP_GB": "inf"},
         "env:TRAINER_CHILD_MEMCAP_GB: expected a finite number, got inf @ limits.memory_cap_gb"),
        (["./nan.yaml"], {}, "nan.yaml:1:12: expected a finite number, got nan @ training.grad_clip_norm"),
    ])
    def test_non_finite_numbers(self, tmp_path, args, env, message):
        (tmp_path / "nan.yaml").write_text("training: {grad_clip_norm: .nan}\n")
        code, err = compile_(tmp_path, *args, env=env)
        assert (code, err) == (3, f"error: {message} (write a finite number)\n")

    def test_a_5000_digit_integer(self, tmp_path):
        (tmp_path / "big.yaml").write_text("run:\n  base_seed: " + "9" * 5000 + "\n")
        code, err = compile_(tmp_path, "--hermetic", "./big.yaml")
        assert (code, err) == (3, "error: big.yaml:2:14: integer out of range (integers are read up to 64 bits)\n")

    def test_a_float_is_not_a_count(self, tmp_path):
        code, err = compile_(tmp_path, "--hermetic", "data.synthetic.symbols=1e29")
        assert code == 3
        assert err == ("error: 2 problems in the configuration:\n"
                       "  - cli:arg 1: expected an integer, got a number 1e+29 @ data.synthetic.symbols\n"
                       "  - cli:arg 1: must be ≤ 100000; got 1e+29 @ data.synthetic.symbols\n")

    @pytest.mark.parametrize(("override", "message"), [
        ("limits.total_time_budget_h=1e-300", "cli:arg 1: limits.total_time_budget_h = 1e-300 leaves each step a "
                                               "timeout of 0 s @ limits.total_time_budget_h (give the run at least a "
                                               "second: 0.0003 h or more)"),
        ("limits.memory_cap_gb=1e-9", "cli:arg 1: limits.memory_cap_gb = 1e-09 is a memory cap of 0 MB @ "
                                      "limits.memory_cap_gb (set at least 0.001 (1 MB), or null)"),
    ])
    def test_a_derived_limit_that_rounds_to_nothing(self, tmp_path, override, message):
        code, err = compile_(tmp_path, "--hermetic", override)
        assert (code, err) == (4, f"error: the plan cannot be honoured on this hardware:\n  - {message}\n")

    def test_a_one_megabyte_machine(self, tmp_path):
        spec = LAPTOP_SPEC.read_text().replace("memory_mb: 16384", "memory_mb: 1")
        assert spec != LAPTOP_SPEC.read_text()
        (tmp_path / "tiny.yaml").write_text(spec)
        code, err = compile_(tmp_path, "--hermetic", spec=tmp_path / "tiny.yaml")
        assert code == 4
        assert "leaves each step a memory cap of 0 MB @ limits.memory_threshold" in err

    @pytest.mark.parametrize(("value", "message"), [
        (".nan", "box.yaml:6:1: expected a finite number, got nan @ memory_total_mb (write a finite number)"),
        ("1" + "0" * 30, "box.yaml:6:18: integer out of range (integers are read up to 64 bits)"),
    ])
    def test_a_hardware_spec(self, tmp_path, value, message):
        spec = LAPTOP_SPEC.read_text()
        (tmp_path / "box.yaml").write_text(spec.replace("memory_total_mb: 16384", f"memory_total_mb: {value}"))
        code, err = compile_(tmp_path, "--hermetic", spec="box.yaml")
        assert code == 4
        assert message in err


class TestFiles:
    """Only regular files are read: a FIFO, a device or a symlink loop is a located error where it was named."""

    def test_a_fifo_given_as_a_profile(self, tmp_path):
        os.mkfifo(tmp_path / "fifo.yaml")
        code, err = compile_(tmp_path, "--hermetic", "./fifo.yaml")
        assert (code, err) == (3, "error: cli:arg 1: cannot read profile fifo.yaml: not a regular file but a FIFO; "
                                  "only regular files are read\n")

    def test_a_device_given_as_a_profile(self, tmp_path):
        code, err = compile_(tmp_path, "--hermetic", "/dev/null")
        assert (code, err) == (3, "error: cli:arg 1: cannot read profile /dev/null: not a regular file but a "
                                  "character device; only regular files are read\n")

    @pytest.mark.parametrize("where", ["profiles/ci_fast.yaml", "profiles/machines/ci_fast.yaml"])
    def test_a_fifo_in_profiles_named_like_a_shipped_profile(self, tmp_path, where):
        (tmp_path / where).parent.mkdir(parents=True)
        os.mkfifo(tmp_path / where)
        code, err = compile_(tmp_path, "--hermetic", "ci_fast")
        assert (code, err) == (3, f"error: cli:arg 1: cannot read profile {where}: not a regular file but a FIFO; "
                                  "only regular files are read\n")

    def test_a_fifo_among_the_families(self, tmp_path):
        (tmp_path / "profiles" / "families").mkdir(parents=True)
        os.mkfifo(tmp_path / "profiles" / "families" / "mine.yaml")
        code, err = compile_(tmp_path, "--hermetic")
        assert (code, err) == (3, "error: cannot read profile profiles/families/mine.yaml: not a regular file but a "
                                  "FIFO; only regular files are read\n")

    def test_a_symlink_loop_given_as_a_profile(self, tmp_path):
        (tmp_path / "loop.yaml").symlink_to("loop.yaml")
        code, err = compile_(tmp_path, "--hermetic", "./loop.yaml")
        assert (code, err) == (3, "error: cli:arg 1: cannot read profile loop.yaml: Too many levels of symbolic links "
                                  "(the link leads back to itself; point it at a YAML file)\n")

    def test_a_symlink_loop_is_not_skipped_for_the_shipped_profile(self, tmp_path):
        (tmp_path / "profiles").mkdir()
        (tmp_path / "profiles" / "ci_fast.yaml").symlink_to("ci_fast.yaml")
        code, err = compile_(tmp_path, "--hermetic", "ci_fast")
        assert (code, err) == (3, "error: cli:arg 1: cannot read profile profiles/ci_fast.yaml: Too many levels of "
                                  "symbolic links (the link leads back to itself; point it at a YAML file)\n")

    def test_a_fifo_as_the_project_file(self, tmp_path):
        os.mkfifo(tmp_path / "tkplan.yaml")
        code, err = compile_(tmp_path, "--hermetic")
        assert (code, err) == (3, "error: cannot read profile tkplan.yaml: not a regular file but a FIFO; only regular "
                                  "files are read\n")

    def test_a_fifo_as_the_hardware_spec(self, tmp_path):
        os.mkfifo(tmp_path / "box.yaml")
        code, err = compile_(tmp_path, "--hermetic", spec="box.yaml")
        assert (code, err) == (4, "error: hardware spec box.yaml: cannot read file: not a regular file but a FIFO; "
                                  "only regular files are read\n")

    def test_the_compile_cache_does_not_wait_on_a_fifo(self, tmp_path):
        """The cache digests the profiles on the search path before compiling: a FIFO there must not block it."""
        (tmp_path / "profiles").mkdir()
        os.mkfifo(tmp_path / "profiles" / "other.yaml")
        code, _, err = tkplan(tmp_path, "compile", "--hermetic", "--hardware", str(LAPTOP_SPEC))
        assert (code, err) == (0, "")


class TestEnvironmentValues:
    def test_a_value_that_is_not_utf8(self, tmp_path):
        code, err = compile_(tmp_path, env={b"TKPLAN__run__name": b"caf\xe9"})
        assert (code, err) == (3, "error: env:TKPLAN__run__name: the value is not UTF-8 text (set TKPLAN__run__name "
                                  "to UTF-8 text, or unset it)\n")

    def test_pythonhashseed_random(self, tmp_path):
        code, err = compile_(tmp_path, "-o", "plan.json", env={"PYTHONHASHSEED": "random"})
        assert (code, err) == (0, "")
        plan = json.loads((tmp_path / "plan.json").read_text())
        assert plan["inputs"]["env"]["PYTHONHASHSEED"] == "random"
        assert {s["env"]["PYTHONHASHSEED"] for s in plan["steps"]} == {"random"}

    @pytest.mark.parametrize("value", [H100_UUID, H100_UUID[:12], f"{H100_UUID},0"])
    def test_cuda_visible_devices_by_uuid(self, tmp_path, value):
        code, err = compile_(tmp_path, "h100_full", "campaign.families=[mlp]", "-o", "plan.json", spec=H100_SPEC,
                             env={"CUDA_VISIBLE_DEVICES": value})
        assert (code, err) == (0, "")
        plan = json.loads((tmp_path / "plan.json").read_text())
        assert {s["env"]["CUDA_VISIBLE_DEVICES"] for s in plan["steps"] if s["resources"]["device"] == "cuda"} == \
            {H100_UUID}

    @pytest.mark.parametrize(("value", "hint"), [
        ("GPU-00000000-dead", "list only GPUs this machine has, by NVML index or GPU UUID"),
        ("MIG-7d1e6f3a-2b4c-4d5e-8f9a-0b1c2d3e4f5a", "list only GPUs this machine has, by NVML index or GPU UUID; "
                                                     "MIG instances are not in the hardware spec (a MIG-enabled GPU "
                                                     "is planned as its whole device)"),
    ])
    def test_an_unknown_gpu_uuid_is_located(self, tmp_path, value, hint):
        code, err = compile_(tmp_path, "ci_fast", spec=H100_SPEC, env={"CUDA_VISIBLE_DEVICES": value})
        assert (code, err) == (4, "error: the plan cannot be honoured on this hardware:\n  - env:CUDA_VISIBLE_DEVICES: "
                                  f"GPU(s) {value} not on this machine (it has 0 ({H100_UUID})) @ gpu.devices "
                                  f"({hint})\n")


class TestNamesThatBecomePaths:
    """A family's key and display name become step ids and directories: each must be a safe file name."""

    @pytest.mark.parametrize("key", ["../../x", "/abs", "", "."])
    def test_a_family_key_chosen_by_its_display_name(self, tmp_path, key):
        (tmp_path / "mine.yaml").write_text(RIDGE.replace("  ridge:", f"  {json.dumps(key)}:"))
        around = sorted(tmp_path.parent.iterdir())
        code, err = compile_(tmp_path, "--hermetic", "./mine.yaml", "campaign.families=[Ridge]", "-o", "plan.json")
        assert code == 3
        assert err == (f"error: mine.yaml:4:5: family name {key!r} is not a safe file name: use 1-200 of A-Z a-z 0-9 "
                       f"_ . + -, not starting with '.' @ families.{key} (rename it)\n")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]
        assert sorted(tmp_path.parent.iterdir()) == around

    def test_a_display_name(self, tmp_path):
        (tmp_path / "mine.yaml").write_text(RIDGE.replace("display_name: Ridge", "display_name: ../Ridge"))
        code, err = compile_(tmp_path, "--hermetic", "./mine.yaml", "campaign.families=[ridge]")
        assert (code, err) == (3, "error: mine.yaml:7:7: display_name '../Ridge' is not a safe file name: use 1-200 of "
                                  "A-Z a-z 0-9 _ . + -, not starting with '.' "
                                  "@ families.ridge.runtime.display_name (rename it)\n")

    def test_a_plan_with_an_unsafe_step_id_is_refused_when_read(self, tmp_path):
        from tkplan.planner._plan import compute_hash

        assert compile_(tmp_path, "--hermetic", "ci_fast", "-o", "plan.json")[0] == 0
        plan = json.loads((tmp_path / "plan.json").read_text())
        plan["steps"][0]["id"] = "../.."
        plan["plan_hash"] = compute_hash(plan)
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        code, _, err = tkplan(tmp_path, "diff", "plan.json", "plan.json")
        assert code == 5
        assert "'../..' does not match" in err and "@ $.steps[0].id" in err
