"""The hardware-aware commands: probe, compile --hardware, explain of derived values, diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tkplan.cli import main
from tkplan.planner import load_hardware, probe

SPECS = Path(__file__).parent / "specs"


@pytest.fixture()
def cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), env={"TKPLAN_CACHE_DIR": str(tmp_path / "cache"), **(env or {})},
                             catch_exceptions=False)

    return invoke


def test_probe_prints_a_spec_that_compiles_elsewhere(cli, tmp_path):
    """`tkplan probe > box.yaml` then `tkplan compile --hardware box.yaml` plans for that machine."""
    result = cli("probe")
    assert result.exit_code == 0
    (tmp_path / "box.yaml").write_text(result.output)
    assert load_hardware(tmp_path / "box.yaml") == probe()
    compiled = cli("compile", "--hermetic", "--hardware", "box.yaml", "--format", "json")
    assert json.loads(compiled.output)["hardware"]["cpus_usable"] == probe().cpus_usable


def test_cross_compiling_for_an_h100_from_a_laptop(cli):
    """The plan records the spec it was compiled for; its hash is the same from any machine."""
    families = "campaign.families=[lightgbm, mlp, lstm]"
    first = cli("compile", "--hermetic", "--hardware", str(SPECS / "h100_16core.yaml"), "h100_full", families,
                "-o", "a.json")
    second = cli("compile", "--hermetic", "--no-cache", "--hardware", str(SPECS / "h100_16core.yaml"), "h100_full",
                 families, "-o", "b.json")
    assert first.exit_code == second.exit_code == 0
    a, b = Path("a.json").read_text(), Path("b.json").read_text()
    assert a == b
    plan = json.loads(a)
    assert plan["hardware"]["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    mlp = next(s for s in plan["steps"] if s["family"] == "mlp")
    assert (mlp["resources"]["device"], mlp["resources"]["precision"],
            mlp["limits"]["vram_cap_mb"]) == ("cuda", "bf16", 4096)
    assert plan["config"]["training"]["compile"] is True


def test_mac_test_plans_for_the_mps_device(cli, tmp_path):
    """An Apple-silicon spec reports MPS; mac_test requires it and puts the networks on it."""
    spec = load_hardware(SPECS / "laptop_2core.yaml")
    text = (SPECS / "laptop_2core.yaml").read_text().replace("mps: false", "mps: true").replace(
        "platform: linux", "platform: darwin").replace("machine: x86_64", "machine: arm64")
    (tmp_path / "mac.yaml").write_text(text)
    assert spec.mps is False
    result = cli("compile", "--hermetic", "--hardware", "mac.yaml", "mac_test", "--format", "json",
                 "campaign.families=[lightgbm, lstm]")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.output)["steps"]
    assert {s["resources"]["device"] for s in steps if s["family"] == "lstm"} == {"mps"}
    assert {s["resources"]["device"] for s in steps if s["family"] == "lightgbm"} == {"cpu"}
    refused = cli("compile", "--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"), "mac_test")
    assert refused.exit_code == 4
    assert "requires Apple's MPS device" in refused.output


NETWORKS = {"mlp", "cnn1d", "lstm", "transformer", "tab_cnn", "tab_lstm", "tab_transformer", "vae", "gan",
            "meta_learning", "multi_task"}


@pytest.mark.parametrize(("spec", "profile", "device", "precision"), [
    ("h100_16core", "h100_full", "cuda", "bf16"), ("kaggle_t4", "kaggle_safe", "cuda", "fp16"),
    ("mac_m2", "mac_test", "mps", "fp32")])
def test_each_machine_profiles_campaign_uses_what_the_machine_is_for(cli, spec, profile, device, precision):
    """Compiled as they ship, for their machine: every network family trains on the accelerator."""
    result = cli("compile", "--hermetic", "--hardware", str(SPECS / f"{spec}.yaml"), profile, "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    networks = [s for s in plan["steps"] if s["family"] in NETWORKS]
    assert {s["family"] for s in networks} == NETWORKS
    assert {(s["resources"]["device"], s["resources"]["precision"]) for s in networks} == {(device, precision)}
    others = [s for s in plan["steps"] if s["family"] not in NETWORKS]
    assert {s["resources"]["device"] for s in others} <= {"cpu"}
    if profile == "kaggle_safe":  # within 9 h and 16 GB of GPU memory per step
        assert plan["schedule"]["deadline_s"] == 9 * 3600
        assert max(s["limits"]["timeout_s"] for s in plan["steps"]) <= 9 * 3600
        assert max(s["limits"]["vram_cap_mb"] for s in networks) <= 16384


def test_explain_shows_the_planners_derivations(cli):
    result = cli("explain", "threads", "--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"),
                 "campaign.families=[quantile_lightgbm, ensemble]", "campaign.targets=[fwd_ret_5m]")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "threads: derived by the planner",
        "  quantile_lightgbm.fwd_ret_5m.s42  1  cost_share  cost 2.5 of the CPU steps' 27.5 over 2 thread(s) = 0.18 "
        "thread(s) of work → 1",
        "  ensemble.fwd_ret_5m.s42           2  cost_share  cost 25 of the CPU steps' 27.5 over 2 thread(s) = 1.82 "
        "thread(s) of work → 2",
    ]


def test_explain_shows_where_each_gpu_step_goes(cli):
    result = cli("explain", "gpus", "--hermetic", "--hardware", str(SPECS / "kaggle_t4.yaml"), "kaggle_safe",
                 "campaign.families=[mlp]", "campaign.targets=[fwd_ret_5m]")
    assert result.output.splitlines() == [
        "gpus: derived by the planner",
        '  mlp.fwd_ret_5m.s42  ["GPU-8f1d6a4e-2b7c-4d3e-9a51-0c6e2f7b3d10"]  gpu_least_loaded  GPU 0 (Tesla T4): '
        "the only usable GPU",
    ]


class TestExplainEveryDerivedValue:
    """Every value the planner derives is explainable, also where no step of the campaign derives it."""

    def test_a_cpu_campaign_says_why_it_has_no_batch_size_gpu_or_vram_cap(self, cli):
        laptop = ("--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"), "campaign.families=[lightgbm, mlp]")
        batch = cli("explain", "batch_size", *laptop)
        assert batch.exit_code == 0, batch.output
        assert batch.output.splitlines() == [
            "batch_size: no step of this plan derives it: only network families have a batch size, and the planner "
            "scales it only for tab_transformer, transformer (seq_batch_threshold); this campaign trains lightgbm, "
            "mlp; the batch size of mlp is a hyperparameter (tkplan explain families.mlp.batch_size)"]
        for key in ("gpus", "vram_cap_mb"):
            result = cli("explain", key, *laptop)
            assert result.exit_code == 0, result.output
            assert result.output == (f"{key}: no step of this plan derives it: only steps on a CUDA GPU get one, and "
                                     "the machine this plan is for has no NVIDIA GPU (hardware: laptop_2core.yaml); "
                                     "compile with --hardware SPEC to plan for one that has\n")

    def test_a_gpu_step_explains_its_vram_cap_and_a_transformer_its_batch(self, cli):
        h100 = ("--hermetic", "--hardware", str(SPECS / "h100_16core.yaml"), "h100_full",
                "campaign.families=[mlp, transformer]", "campaign.targets=[fwd_ret_5m]", "campaign.seeds=[42]")
        vram = cli("explain", "vram_cap_mb", *h100)
        assert vram.exit_code == 0, vram.output
        lines = vram.output.splitlines()
        assert lines[0] == "vram_cap_mb: derived by the planner"
        assert lines[1].split()[:3] == ["mlp.fwd_ret_5m.s42", "4096", "family_cap"]
        assert "families.mlp.runtime.vram_cap_mb = 4096 (tkplan:profiles/families/mlp.yaml:" in lines[1]
        batch = cli("explain", "batch_size", *h100)
        assert batch.output.splitlines()[1].split()[:3] == ["transformer.fwd_ret_5m.s42", "128", "seq_batch_scaling"]

    def test_every_step_explains_its_timeout(self, cli):
        result = cli("explain", "timeout_s", "--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"),
                     "campaign.families=[lightgbm]", "campaign.targets=[fwd_ret_5m]", "limits.timeout_s=600")
        assert result.output.splitlines() == [
            "timeout_s: derived by the planner",
            "  lightgbm.fwd_ret_5m.s42  600  profile  limits.timeout_s = 600 (cli:arg 3)"]

    def test_an_unknown_key_names_the_derived_values(self, cli):
        result = cli("explain", "batchsize", "--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"))
        assert result.exit_code == 3
        assert "no such key: batchsize (did you mean 'batch_size'?)" in result.output


class TestExplainASavedPlan:
    """`tkplan explain KEY plan.json` reads the plan's own provenance and derivations, not its profiles."""

    def test_configured_and_derived_keys_come_from_the_plan(self, cli, tmp_path):
        compiled = cli("compile", "--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"), "-o", "plan.json",
                       "campaign.families=[quantile_lightgbm, ensemble]", "campaign.targets=[fwd_ret_5m]",
                       "families.lightgbm.num_leaves=80")
        assert compiled.exit_code == 0, compiled.output
        (tmp_path / "tkplan.yaml").write_text("families: {lightgbm: {num_leaves: 12}}\n")  # not read: the plan is
        chain = cli("explain", "families.lightgbm.num_leaves", "plan.json")
        assert chain.exit_code == 0, chain.output
        lines = chain.output.splitlines()
        assert lines[0] == "families.lightgbm.num_leaves = 80"
        assert lines[2].split() == ["*", "cli:arg", "3", "80"]
        threads = cli("explain", "threads", "plan.json")
        assert threads.output == cli("explain", "threads", "--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"),
                                     "campaign.families=[quantile_lightgbm, ensemble]",
                                     "campaign.targets=[fwd_ret_5m]").output
        assert cli("explain", "gpus", "plan.json").output.startswith("gpus: no step of this plan derives it")

    def test_a_plan_is_explained_alone_and_must_be_a_plan(self, cli, tmp_path):
        cli("compile", "--hermetic", "--hardware", str(SPECS / "laptop_2core.yaml"), "-o", "plan.json")
        mixed = cli("explain", "threads", "plan.json", "run.threads=1")
        assert mixed.exit_code == 2
        assert "a saved plan is explained alone" in mixed.output
        (tmp_path / "other.json").write_text("{}")
        other = cli("explain", "threads", "other.json")
        assert other.exit_code == 5
        assert "other.json: not a tkplan.plan/1 plan" in other.output


def test_explain_prints_the_chain_with_the_winner_marked(cli):
    result = cli("explain", "families.lightgbm.num_leaves", "--hermetic", "families.lightgbm.num_leaves=80")
    lines = result.output.splitlines()
    assert lines[0] == "families.lightgbm.num_leaves = 80"
    assert "tkplan:profiles/families/lightgbm.yaml:" in lines[1] and "(overridden)" in lines[1]
    assert lines[2].startswith("  * cli:arg 1")


def test_diff_names_each_changed_key_with_its_origin(cli):
    cli("compile", "--hermetic", "-o", "a.json", "--hardware", str(SPECS / "laptop_2core.yaml"))
    cli("compile", "--hermetic", "-o", "b.json", "--hardware", str(SPECS / "laptop_2core.yaml"),
        "families.lightgbm.num_leaves=64")
    result = cli("diff", "a.json", "b.json")
    assert result.exit_code == 1
    assert "families.lightgbm.num_leaves: 96 → 64" in result.output
    assert "now: cli:arg 1" in result.output
    assert "[step lightgbm.fwd_ret_5m.s42]" in result.output
    same = cli("diff", "a.json", "a.json")
    assert (same.exit_code, same.output.split(" (")[0]) == (0, "same plan")


def test_diff_refuses_an_edited_plan(cli):
    cli("compile", "--hermetic", "-o", "a.json", "--hardware", str(SPECS / "laptop_2core.yaml"))
    text = Path("a.json").read_text().replace('"num_leaves": 96', '"num_leaves": 97', 1)
    Path("b.json").write_text(text)
    result = cli("diff", "a.json", "b.json")
    assert result.exit_code == 5
    assert "edited after compiling" in result.output


@pytest.mark.parametrize(("content", "message"), [
    (b"\x8c\x00binary", "error: bin.json: not a plan (not UTF-8 text, byte 0); give the plan.json that tkplan "
                        "compile -o wrote"),
    (b"{}", "error: bin.json: not a tkplan.plan/1 plan (format: None); compile it with this tkplan"),
    (b"[1, 2", "error: bin.json: not a plan (invalid JSON: Expecting ',' delimiter: line 1 column 6 (char 5))"),
])
def test_diff_refuses_a_file_that_is_not_a_plan(cli, content, message):
    Path("bin.json").write_bytes(content)
    result = cli("diff", "bin.json", "bin.json")
    assert (result.exit_code, result.stderr) == (5, message + "\n")


@pytest.mark.parametrize("command", [["run"], ["env"], ["exec"]])
def test_the_executor_commands_refuse_a_file_that_is_not_a_plan(cli, command):
    Path("bin.json").write_bytes(b"\x8c\x00binary")
    extra = {"run": [], "env": ["step"], "exec": ["step", "--", "true"]}[command[0]]
    result = cli(*command, "bin.json", *extra)
    assert result.exit_code == 5
    assert result.stderr.endswith("error: bin.json: not a plan (not UTF-8 text, byte 0); give the plan.json that "
                                  "tkplan compile -o wrote\n")


def test_plans_match_the_shipped_plan_schema(cli):
    """plan.json is described by schema/plan.schema.json, which `tkplan schema --export` writes for editors."""
    from tkplan.planner._schemas import validator

    cli("compile", "--hermetic", "-o", "plan.json", "--hardware", str(SPECS / "h100_16core.yaml"), "h100_full")
    errors = list(validator("plan.schema.json").iter_errors(json.loads(Path("plan.json").read_text())))
    assert errors == []
    exported = cli("schema", "--export", "schemas")
    names = {Path(line).relative_to("schemas").as_posix() for line in exported.output.split()}
    assert {"config.schema.json", "plan.schema.json", "hardware.schema.json", "families/lightgbm.json"} <= names
