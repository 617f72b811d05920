"""The shipped family profiles (profiles/families/*.yaml) against their JSON Schemas (schema/families/*.json).

These tests read the files directly, with ruamel.yaml and jsonschema, so they hold whatever state the
planner is in. Schemas are registered under their path relative to ``schema/`` ("families/lightgbm.json",
"family_runtime.json"), which is how the relative ``$ref`` "../family_runtime.json" of a family schema
resolves, and how config.schema.json refers to the family schemas.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "schema"
PROFILE_DIR = ROOT / "profiles" / "families"

FAMILIES = {
    "lightgbm": "LightGBM",
    "quantile_lightgbm": "QuantileLightGBM",
    "xgboost": "XGBoost",
    "ngboost": "NGBoost",
    "ensemble": "Ensemble",
    "gmm_regime": "GMMRegime",
    "change_point": "ChangePoint",
    "ftrl_proximal": "FTRLProximal",
    "reward_based": "RewardBased",
    "mlp": "MLP",
    "cnn1d": "CNN1D",
    "lstm": "LSTM",
    "transformer": "Transformer",
    "tab_cnn": "TabCNN",
    "tab_lstm": "TabLSTM",
    "tab_transformer": "TabTransformer",
    "vae": "VAE",
    "gan": "GAN",
    "meta_learning": "MetaLearning",
    "multi_task": "MultiTask",
}
NETWORKS = ["mlp", "cnn1d", "lstm", "transformer", "tab_cnn", "tab_lstm", "tab_transformer",
            "vae", "gan", "meta_learning", "multi_task"]
SEQUENCE = {"cnn1d", "lstm", "transformer"}
"""Families that read a lookback window; the Tab* aliases read one row's features as their sequence."""
TWO_BACKENDS = {"mlp", "lstm"}
"""Network families with a TensorFlow implementation beside the PyTorch one."""
ALIASES = {"tab_cnn": "cnn1d", "tab_lstm": "lstm", "tab_transformer": "transformer"}
SCHEMA_LINE = "# yaml-language-server: $schema=../../schema/config.schema.json"


def load_yaml(path: Path):
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def load_profile(key: str) -> dict:
    return load_yaml(PROFILE_DIR / f"{key}.yaml")


def family_schema(key: str) -> dict:
    return json.loads((SCHEMA_DIR / "families" / f"{key}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def registry() -> Registry:
    """Every schema file, registered under its path relative to schema/."""
    resources = []
    for path in sorted(SCHEMA_DIR.rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        uri = path.relative_to(SCHEMA_DIR).as_posix()
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


def validator_for(ref: str, registry: Registry) -> Draft202012Validator:
    """A validator of the schema at ``ref``, entered by reference so relative $refs resolve from it."""
    return Draft202012Validator({"$ref": ref}, registry=registry)


def errors(key: str, params: dict, registry: Registry) -> list[str]:
    found = validator_for(f"families/{key}.json", registry).iter_errors(params)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found)


def test_every_family_has_a_profile_and_a_schema():
    assert sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")) == sorted(FAMILIES)
    assert sorted(p.stem for p in (SCHEMA_DIR / "families").glob("*.json")) == sorted(FAMILIES)


@pytest.mark.parametrize("key", FAMILIES)
def test_profile_is_one_family_under_families(key):
    text = (PROFILE_DIR / f"{key}.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_LINE
    data = load_yaml(PROFILE_DIR / f"{key}.yaml")
    assert list(data) == ["families"]
    assert list(data["families"]) == [key]
    assert data["families"][key]["runtime"]["display_name"] == FAMILIES[key]


@pytest.mark.parametrize("name", ["family_runtime.json", *(f"families/{k}.json" for k in FAMILIES)])
def test_schema_is_a_valid_draft_2020_12_schema_without_id(name):
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$id" not in schema
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("key", FAMILIES)
def test_profile_is_valid(key, registry):
    assert errors(key, load_profile(key)["families"][key], registry) == []


@pytest.mark.parametrize("key", FAMILIES)
def test_schema_lists_exactly_the_profile_keys(key):
    params = load_profile(key)["families"][key]
    schema = family_schema(key)
    assert set(schema["properties"]) == set(params) | {"entrypoint"}
    optional = {name for name, prop in schema["properties"].items() if "default" in prop}
    assert optional == {"entrypoint"}, "every hyperparameter must be set by the family profile"
    assert schema["properties"]["runtime"] == {"$ref": "../family_runtime.json"}
    for name, prop in schema["properties"].items():
        if name != "runtime":
            assert prop.get("description"), f"{key}.{name} has no description"


def test_relative_runtime_ref_resolves_from_the_family_schema(registry):
    resolved = registry.resolver(base_uri="families/lightgbm.json").lookup("../family_runtime.json")
    assert resolved.contents["title"] == "Family runtime traits"


def test_all_profiles_together_validate_against_the_config_schema(registry):
    families = {key: load_profile(key)["families"][key] for key in FAMILIES}
    found = validator_for("config.schema.json#/properties/families", registry).iter_errors(families)
    assert [e.message for e in found] == []


BAD = [
    # (family, key path, bad value, words expected in the message)
    ("lightgbm", ("num_leaves",), "96", "is not of type 'integer'"),
    ("lightgbm", ("max_depth",), -2, "less than the minimum of -1"),
    ("lightgbm", ("learning_rate",), 0, "less than or equal to the minimum of 0"),
    ("lightgbm", ("feature_fraction",), 1.5, "greater than the maximum of 1"),
    ("xgboost", ("learning_rate",), -0.1, "less than or equal to the minimum of 0"),
    ("xgboost", ("subsample",), 0.0, "less than or equal to the minimum of 0"),
    ("quantile_lightgbm", ("alpha",), 1.0, "greater than or equal to the maximum of 1"),
    ("ensemble", ("rf_max_features",), "all", "is not valid under any of the given schemas"),
    ("ensemble", ("stacking_cv",), 1, "less than the minimum of 2"),
    ("gmm_regime", ("covariance_type",), "diagonal", "is not one of"),
    ("mlp", ("dropout",), 1.0, "greater than or equal to the maximum of 1"),
    ("mlp", ("hidden_layers",), [], "should be non-empty"),
    ("lstm", ("cell",), "rnn", "is not one of"),
    ("transformer", ("batch_size",), 0, "less than the minimum of 1"),
    ("multi_task", ("loss_weights",), {"fwd_ret_5m": -1.0}, "less than the minimum of 0"),
    ("mlp", ("runtime", "thread_policy"), "openmpi", "is not one of"),
    ("lightgbm", ("runtime", "isolation", "reason"), "", "should be non-empty"),
    ("lightgbm", ("runtime", "threads", "min"), 0, "less than the minimum of 1"),
    ("change_point", ("runtime", "env"), {"mkl_threading_layer": "SEQUENTIAL"}, "does not match"),
    ("mlp", ("runtime", "vram_cap_mb"), "4GB", "is not of type"),
    ("mlp", ("entrypoint",), "my_trainers.fit", "does not match"),
]


def _set(mapping: dict, path: tuple[str, ...], value) -> None:
    for part in path[:-1]:
        mapping = mapping[part]
    mapping[path[-1]] = value


@pytest.mark.parametrize(("key", "path", "value", "message"), BAD, ids=lambda v: str(v))
def test_wrong_type_or_out_of_range_value_is_rejected(key, path, value, message, registry):
    params = copy.deepcopy(load_profile(key)["families"][key])
    _set(params, path, value)
    found = errors(key, params, registry)
    assert len(found) == 1, found
    assert found[0].startswith(".".join(path))
    assert message in found[0]


@pytest.mark.parametrize(("key", "typo"), [("lightgbm", "num_leaf"), ("xgboost", "eta"),
                                            ("ngboost", "seed"), ("transformer", "nhead")])
def test_unknown_key_is_rejected(key, typo, registry):
    params = copy.deepcopy(load_profile(key)["families"][key])
    params[typo] = 1
    assert errors(key, params, registry) == [
        f": Additional properties are not allowed ('{typo}' was unexpected)"
    ]


@pytest.mark.parametrize("key", ["quantile_lightgbm", "lstm"])
def test_unknown_runtime_key_is_rejected(key, registry):
    params = copy.deepcopy(load_profile(key)["families"][key])
    params["runtime"]["gpus"] = "none"
    assert errors(key, params, registry) == [
        "runtime: Additional properties are not allowed ('gpus' was unexpected)"
    ]


def test_a_user_entrypoint_is_accepted(registry):
    params = copy.deepcopy(load_profile("lightgbm")["families"]["lightgbm"])
    params["entrypoint"] = "my_pkg.trainers:fit_lightgbm"
    assert errors("lightgbm", params, registry) == []


def test_seed_values():
    lightgbm = load_profile("lightgbm")["families"]["lightgbm"]
    assert lightgbm["num_leaves"] == 96
    assert lightgbm["runtime"]["thread_policy"] == "openmp"
    assert lightgbm["runtime"]["nan_ok"] is True
    assert load_profile("xgboost")["families"]["xgboost"]["max_depth"] == 7
    assert load_profile("xgboost")["families"]["xgboost"]["learning_rate"] == 0.03

    quantile = load_profile("quantile_lightgbm")["families"]["quantile_lightgbm"]
    assert quantile["runtime"]["threads"] == {"min": 1, "max": 8, "reserve": 0}
    assert quantile["runtime"]["tasks"] == ["regression"]
    assert quantile["time_budget_sec"] == 1800

    assert load_profile("transformer")["families"]["transformer"]["batch_size"] == 128
    assert load_profile("lstm")["families"]["lstm"]["epochs"] == 30
    assert load_profile("mlp")["families"]["mlp"]["runtime"]["vram_cap_mb"] == 4096
    assert load_profile("mlp")["families"]["mlp"]["learning_rate"] == 1.0e-3
    assert load_profile("multi_task")["families"]["multi_task"]["learning_rate"] == 3.0e-4

    ensemble = load_profile("ensemble")["families"]["ensemble"]
    assert (ensemble["hgb_l2"], ensemble["purge_overlap"],
            ensemble["runtime"]["thread_policy"]) == (1.0e-4, 17, "joblib")

    ngboost = load_profile("ngboost")["families"]["ngboost"]
    assert "seed" not in ngboost and ngboost["col_sample"] == 0.6


@pytest.mark.parametrize("key", ["gmm_regime", "change_point"])
def test_risky_mkl_families_run_blas_sequential_with_lsqr(key):
    params = load_profile(key)["families"][key]
    assert params["ridge_solver"] == "lsqr"
    assert params["runtime"]["thread_policy"] == "blas"
    assert params["runtime"]["env"] == {"MKL_THREADING_LAYER": "SEQUENTIAL"}


def test_change_point_keeps_two_threads_back():
    runtime = load_profile("change_point")["families"]["change_point"]["runtime"]
    assert runtime["threads"] == {"min": 1, "max": None, "reserve": 2}


@pytest.mark.parametrize("key", FAMILIES)
def test_runtime_traits_by_kind(key):
    runtime = load_profile(key)["families"][key]["runtime"]
    assert runtime["sequence"] is (key in SEQUENCE)
    assert runtime["multi_target"] is (key == "multi_task")
    if key in NETWORKS:
        backends = ["torch", "tf"] if key in TWO_BACKENDS else ["torch"]
        assert (runtime["backends"], runtime["thread_policy"], runtime["gpu"]) == (backends, "torch", "optional")
        assert (runtime["vram_cap_mb"], runtime["isolation"]["mode"]) == (4096, "process")
    else:
        assert (runtime["gpu"], runtime["vram_cap_mb"]) == ("none", None)


@pytest.mark.parametrize(("alias", "base"), ALIASES.items())
def test_tab_aliases_share_their_base_hyperparameters(alias, base):
    alias_params = load_profile(alias)["families"][alias]
    base_params = load_profile(base)["families"][base]
    assert {k: v for k, v in alias_params.items() if k != "runtime"} == {
        k: v for k, v in base_params.items() if k != "runtime"
    }
    assert family_schema(alias)["properties"] == family_schema(base)["properties"]


def test_the_isolation_reasons_are_sentences():
    for key in FAMILIES:
        reason = load_profile(key)["families"][key]["runtime"]["isolation"]["reason"]
        assert reason[0].isupper() and reason.endswith("."), (key, reason)
