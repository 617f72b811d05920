"""References and the Hydra override grammar from the command line: what a user types, sees, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

LAPTOP_SPEC = str(Path(__file__).parent / "specs" / "laptop_2core.yaml")
KAGGLE_SPEC = str(Path(__file__).parent / "specs" / "kaggle_t4.yaml")  # kaggle_safe requires its GPU
NETWORKS = ("mlp", "cnn1d", "lstm", "transformer", "tab_cnn", "tab_lstm", "tab_transformer", "vae", "gan",
            "meta_learning", "multi_task")


@pytest.fixture()
def cli(cli, monkeypatch: pytest.MonkeyPatch):
    """The shared ``cli``, without the variables these tests set themselves."""
    for name in ("TEAM", "WHO"):
        monkeypatch.delenv(name, raising=False)
    return cli


def project(text: str) -> None:
    Path("tkplan.yaml").write_text(text)


def plan_of(cli, *words: str, env: dict[str, str] | None = None, spec: str = LAPTOP_SPEC) -> dict:
    result = cli("compile", "--hardware", spec, "--format", "json", *words, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def error_of(cli, *words: str, env: dict[str, str] | None = None, command: str = "validate") -> list[str]:
    result = cli(command, *words, env=env)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    return [line.strip().removeprefix("- ") for line in result.output.removeprefix("error: ").splitlines()]


class TestReferences:
    def test_the_plan_holds_resolved_values_only(self, cli):
        project("vars: {team: quant}\n"
                "run: {name: '${vars.team}-${campaign.strategy}', threads: '${env:TEAM_THREADS,1}'}\n"
                "campaign: {families: [lightgbm]}\n")
        plan = plan_of(cli, env={"TEAM_THREADS": "2"})
        assert plan["config"]["run"] == {**plan["config"]["run"], "name": "quant-single_task", "threads": 2}
        assert "vars" not in plan["config"] and not any(k.startswith("vars.") for k in plan["provenance"])
        assert "${" not in json.dumps(plan["config"])
        assert plan["inputs"]["env"] == {"TEAM_THREADS": "2"}
        assert plan["provenance"]["run.threads"][-1]["written"] == "${env:TEAM_THREADS,1}"

    def test_a_referenced_variable_is_covered_by_the_hash_and_the_compile_cache(self, cli):
        project("run: {name: '${env:TEAM,solo}'}\ncampaign: {families: [lightgbm]}\n")
        solo, quant, again = plan_of(cli), plan_of(cli, env={"TEAM": "quant"}), plan_of(cli)
        assert (solo["config"]["run"]["name"], quant["config"]["run"]["name"]) == ("solo", "quant")
        assert solo["plan_hash"] != quant["plan_hash"] and again == solo

    def test_hermetic_refuses_a_variable_without_default(self, cli):
        project("run: {name: '${env:TEAM}', output_dir: '${env:OUT,runs}'}\n")
        assert error_of(cli, "--hermetic", env={"TEAM": "quant"}) == [
            "tkplan.yaml:1:7: ${env:TEAM} reads the environment, which --hermetic ignores @ run.name "
            "(give it a default: ${env:TEAM,value})"]

    def test_hydra_spelling_of_the_environment_on_the_command_line(self, cli):
        plan = plan_of(cli, "run.name=${oc.env:WHO}-run", "campaign.families=[lightgbm]", env={"WHO": "ana"})
        assert plan["config"]["run"]["name"] == "ana-run"

    def test_a_reference_keeps_the_type_of_what_it_refers_to(self, cli):
        plan = plan_of(cli, "campaign.families=[lightgbm, xgboost]",
                       "families.xgboost.max_depth=${families.lightgbm.max_depth}",
                       "campaign.seeds=${vars.seeds}", "+vars.seeds=[1, 2]")
        assert plan["config"]["families"]["xgboost"]["max_depth"] == 8
        assert plan["config"]["campaign"]["seeds"] == [1, 2]


class TestExplain:
    def test_a_two_step_chain(self, cli):
        project("vars:\n  who: ${env:WHO,anon}\n  alias: ${vars.who}\nrun:\n  name: ${vars.alias}-${run.output_dir}\n")
        result = cli("explain", "run.name", env={"WHO": "ana"})
        assert result.exit_code == 0
        lines = [" ".join(line.split()) for line in result.output.splitlines()]
        assert lines[0] == 'run.name = "ana-runs"'
        assert lines[3:] == [
            '* tkplan.yaml:5:3 project "${vars.alias}-${run.output_dir}" → "ana-runs"',
            'via vars.alias = "${vars.who}" (tkplan.yaml:3:3, project)',
            'via vars.who = "${env:WHO,anon}" (tkplan.yaml:2:3, project)',
            'via env:WHO = "ana" (env:WHO)',
            'via run.output_dir = "runs" (tkplan:profiles/base.yaml:12:3, base)',
        ]

    def test_an_unset_variable_shows_its_default(self, cli):
        project("run: {name: '${env:WHO,anon}'}\n")
        assert 'via env:WHO = "anon" (not set: the default)' in " ".join(cli("explain", "run.name").output.split())


class TestDiff:
    def test_a_change_is_attributed_to_the_key_that_changed(self, cli):
        plan_of(cli, "kaggle_safe", "campaign.families=[mlp]", "-o", "a.json", spec=KAGGLE_SPEC)
        plan_of(cli, "kaggle_safe", "campaign.families=[mlp]", "vars.batch_size=16", "-o", "b.json", spec=KAGGLE_SPEC)
        result = cli("diff", "a.json", "b.json")
        assert result.exit_code == 1
        lines = [line.strip() for line in result.output.splitlines()]
        start = lines.index("families.mlp.batch_size: 32 → 16")
        assert lines[start + 1:start + 3] == [
            'was: kaggle_safe (tkplan:profiles/machines/kaggle_safe.yaml:23:35) "${vars.batch_size}", through '
            "vars.batch_size = 32 (tkplan:profiles/machines/kaggle_safe.yaml:21:3)",
            'now: kaggle_safe (tkplan:profiles/machines/kaggle_safe.yaml:23:35) "${vars.batch_size}", through '
            "vars.batch_size = 16 (cli:arg 3)"]


class TestShippedProfiles:
    def test_one_value_sets_every_network_family_of_a_machine_profile(self, cli):
        plan = plan_of(cli, "kaggle_safe", "vars.batch_size=16", "campaign.families=[mlp]", spec=KAGGLE_SPEC)
        families = plan["config"]["families"]
        assert {name: families[name]["batch_size"] for name in NETWORKS} == dict.fromkeys(NETWORKS, 16)
        assert {name: families[name]["epochs"] for name in NETWORKS} == dict.fromkeys(NETWORKS, 30)

    def test_a_family_of_its_own_still_overrides_the_shared_value(self, cli):
        plan = plan_of(cli, "ci_fast", "families.lstm.batch_size=4", "campaign.families=[mlp]")
        families = plan["config"]["families"]
        assert (families["lstm"]["batch_size"], families["mlp"]["batch_size"]) == (4, 8)


class TestReferenceErrors:
    def test_each_error_located_and_all_at_once(self, cli):
        project("vars:\n  a: ${vars.b}\n  b: ${vars.a}\n"
                "run:\n  name: ${run.nmae}\n  threads: ${run.name}\n"
                "families:\n  lightgbm:\n    num_leaves: ${run.output_dir}\n")
        assert error_of(cli) == [
            "3 problems in the configuration:",
            "tkplan.yaml:5:3: ${run.nmae} refers to a missing key: run.nmae does not exist @ run.name "
            "(did you mean 'name'?)",
            "tkplan.yaml:2:3: reference cycle: vars.a → vars.b → vars.a @ vars.a (break the cycle: give one of these "
            "keys a value)",
            "tkplan.yaml:9:5: expected an integer, got a string 'runs' @ families.lightgbm.num_leaves (the value came "
            "through '${run.output_dir}' from run.output_dir (tkplan:profiles/base.yaml:12:3))",
        ]

    def test_references_nested_too_deep(self, cli):
        chain = "".join(f"  k{i}: ${{vars.k{i + 1}}}\n" for i in range(20)) + "  k20: x\n"
        project(f"vars:\n{chain}run: {{name: '${{vars.k0}}'}}\n")
        (message,) = error_of(cli)
        assert message.startswith("tkplan.yaml:")
        assert "references nested too deep (more than 16): " in message


class TestOverrideGrammar:
    def test_add_and_add_or_set(self, cli):
        plan = plan_of(cli, "+env.MY_FLAG=on", "++env.TERM=xterm", "++env.NEW=x", "campaign.families=[lightgbm]")
        assert {k: plan["config"]["env"][k] for k in ("MY_FLAG", "TERM", "NEW")} == {"MY_FLAG": "on", "TERM": "xterm",
                                                                                     "NEW": "x"}

    def test_remove_a_key(self, cli):
        plan = plan_of(cli, "~env.INPUTRC", "~env.TERM=dumb", "campaign.families=[lightgbm]")
        assert "INPUTRC" not in plan["config"]["env"] and "TERM" not in plan["config"]["env"]
        assert "env.INPUTRC" not in plan["provenance"]

    def test_null_quotes_lists_and_maps(self, cli):
        plan = plan_of(cli, "+env.EQ='a=b'", "limits.total_time_budget_h=null", "campaign.families=[lightgbm, xgboost]",
                       "+env.GREETING=\"hello, world\"", "data.synthetic={symbols: 12, timestamps: 200}")
        config = plan["config"]
        assert (config["env"]["EQ"], config["limits"]["total_time_budget_h"]) == ("a=b", None)
        assert config["env"]["GREETING"] == "hello, world"
        assert config["campaign"]["families"] == ["lightgbm", "xgboost"]
        assert config["data"]["synthetic"] == {**config["data"]["synthetic"], "symbols": 12, "timestamps": 200}

    @pytest.mark.parametrize(("words", "message"), [
        (("families.lightgbm.num_leaves=32,64",),
         "cli:arg 1: families.lightgbm.num_leaves=choice(32, 64) is a sweep of several values; `tkplan compile` takes "
         "one value per key @ families.lightgbm.num_leaves (sweeps are for `tkplan sweep`; give one value here, and "
         "quote one that holds commas: key='a,b')"),
        (("x=1", "families.lightgbm.num_leaves=range(8, 64, 8)"),
         "cli:arg 2: families.lightgbm.num_leaves=range(8, 64, 8) is a sweep of several values; `tkplan compile` "
         "takes one value per key @ families.lightgbm.num_leaves (sweeps are for `tkplan sweep`; give one value "
         "here, and quote one that holds commas: key='a,b')"),
        (("campaign.families=choice([lightgbm], [xgboost])",),
         "cli:arg 1: campaign.families=choice([lightgbm], [xgboost]) is a sweep of several values"),
        (("run.name=${env:NO_SUCH_VARIABLE_X}",),
         "cli:arg 1: environment variable NO_SUCH_VARIABLE_X is not set @ run.name (set it, or give a default: "
         "${env:NO_SUCH_VARIABLE_X,value})"),
        (("+run.name=x",), "cli:arg 1: +run.name adds a key, but run.name is already set @ run.name (write "
                           "run.name=value to change it, or ++run.name=value to add or change)"),
        (("~families.lightgbm.num_leavs",),
         "cli:arg 1: override removes no key: families.lightgbm.num_leavs (families.lightgbm.num_leavs does not "
         "exist) (did you mean 'num_leaves'?)"),
        (("~env.TERM=xterm",), "cli:arg 1: ~env.TERM=xterm removes env.TERM only when it holds that value; it holds "
                               "dumb @ env.TERM (write ~env.TERM to remove it whatever it holds)"),
        (("~families.lightgbm.num_leaves",), "cli:arg 1: missing: this override removed it @ "
                                             "families.lightgbm.num_leaves (this key is required: remove only keys "
                                             "that have a default, or set another value)"),
        (("run.name='open",), "cli:arg 1: cannot read value \"'open\": unclosed quote ' at column 1 (close it, or "
                              "escape a ' inside with \\')"),
    ])
    def test_each_bad_override_exits_3_with_its_argument_named(self, cli, words, message):
        lines = error_of(cli, *words, command="compile")
        assert any(line.startswith(message) or message in line for line in lines), lines
