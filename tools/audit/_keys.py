"""Suggest where a hardcoded value belongs in the config tree.

Rules, first match wins:

1. environment variables (``env_default``, ``env_write``, ``shell_default``): a variable of tkplan's table of
   legacy variables (``tkplan.planner._overrides.LEGACY_ENV``: ``THREADS`` → ``run.threads``,
   ``TRAINER_CHILD_MEMCAP_GB`` → ``limits.memory_cap_gb``, ``CUDA_VISIBLE_DEVICES`` → ``gpu.devices``, …) →
   that key; any other → ``env.<NAME>`` (the ``env`` section: extra variables for every step);
2. thread-related names (``num_threads``, ``n_jobs``, ``DEFAULT_THREADS``, ``cpu_count``) → ``run.threads``
   (a clamp or threshold on them → ``run.threads_min`` / ``_max`` / ``_threshold``);
3. a module that is a model family (``lightgbm_trainer.py``, ``_xgboost.py``, ``families/mlp/__init__.py``:
   the stem without leading ``_`` and a ``_trainer``/``_adapter`` suffix, through the aliases) →
   ``families.<family>.<key>``;
4. anything else → ``<module stem>.<key>``.

Keys are snake_case: ``DEFAULT_EPOCHS`` → ``epochs``, ``--seq-lookback`` → ``seq_lookback``. A
constructor's keyword goes under the constructor (``random_forest_regressor.n_estimators``), a clamp
bound gets ``_min``/``_max``, a threshold ``_threshold``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from tkplan.planner._overrides import LEGACY_ENV, UNSET

from ._findings import ENV_KINDS

__all__ = ["FAMILIES", "FAMILY_ALIASES", "config_value", "env_key", "module_prefix", "normalise", "snake", "suggest"]

FAMILIES = frozenset(  # tkplan: ignore[constant]
    {
        "lightgbm", "quantile_lightgbm", "xgboost", "ngboost", "ensemble", "gmm_regime", "change_point",
        "ftrl_proximal", "reward_based", "mlp", "cnn1d", "lstm", "transformer", "tab_cnn", "tab_lstm",
        "tab_transformer", "vae", "gan", "meta_learning", "multi_task",
    }
)
"""The tkplan model families, by config key."""

FAMILY_ALIASES: Mapping[str, str] = {  # tkplan: ignore[constant]
    "lgbm": "lightgbm", "lgb": "lightgbm", "quantile_lgbm": "quantile_lightgbm", "xgb": "xgboost",
    "ngb": "ngboost", "gmm": "gmm_regime", "changepoint": "change_point", "ftrl": "ftrl_proximal",
    "reward": "reward_based", "cnn": "cnn1d", "tabcnn": "tab_cnn", "tablstm": "tab_lstm",
    "tabtransformer": "tab_transformer", "metalearning": "meta_learning", "multitask": "multi_task",
}
"""Module stems that name a family in another spelling."""

_SUFFIXES = ("_trainer", "_adapter", "_family")
_PACKAGE_STEMS = frozenset({"__init__", "__main__"})
_THREAD_RE = re.compile(r"thread|^n_?jobs$|cpu_count")
_NOT_IDENT = re.compile(r"[^0-9a-zA-Z_]+")
_CAMEL_1 = re.compile(r"(?<=[a-z])(?=[A-Z](?!$))")
_CAMEL_2 = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    """``RandomForestRegressor`` → ``random_forest_regressor``, ``ReduceLROnPlateau`` → ``reduce_lr_on_plateau``.

    ``AdamW`` → ``adamw``.
    """
    return _CAMEL_2.sub("_", _CAMEL_1.sub("_", name)).lower()


def normalise(name: str) -> str:
    """A config key for a code name: snake_case, no leading ``_``, no ``default``/``--`` decoration."""
    key = _NOT_IDENT.sub("_", name.strip("-")).strip("_").lower()
    if key.startswith("default_") and len(key) > 8:
        key = key[8:]
    elif key.endswith("_default") and len(key) > 8:
        key = key[:-8]
    return key or "value"


def module_prefix(path: str, aliases: Mapping[str, str] | None = None) -> str:
    """The config prefix for a module: ``families.<family>`` for a family's module, else its stem."""
    pure = PurePosixPath(path)
    stem = pure.stem
    if stem in _PACKAGE_STEMS and pure.parent.name:
        stem = pure.parent.name
    base = normalise(stem)
    name = base
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    family = (aliases or {}).get(name) or FAMILY_ALIASES.get(name) or name
    if family in FAMILIES:
        return f"families.{family}"
    return base


def suggest(kind: str, key: str, prefix: str, *, qualifier: str = "", suffix: str = "") -> str:
    """The suggested config key for a finding.

    Args:
        kind: the finding's kind.
        key: the name the code gives the value.
        prefix: the module's prefix (`module_prefix`).
        qualifier: a constructor name to nest keyword arguments under.
        suffix: ``min``/``max``/``threshold`` for clamp and threshold bounds.
    """
    if kind in ENV_KINDS:
        return env_key(key)
    name = normalise(key)
    tail = f"_{suffix}" if suffix else ""
    if _THREAD_RE.search(name):
        return f"run.threads{tail}"
    if qualifier:
        return f"{prefix}.{snake(qualifier)}.{name}{tail}"
    return f"{prefix}.{name}{tail}"


def env_key(name: str) -> str:
    """Where the environment variable ``name`` belongs: its key in the legacy table, else ``env.<name>``."""
    rule = LEGACY_ENV.get(name)
    return rule[0] if rule is not None else f"env.{name}"


def config_value(kind: str, key: str, value: Any) -> Any:
    """A finding's value as the config holds it: a legacy variable's text read as tkplan reads it.

    ``THREADS="4"`` → ``4`` (``run.threads``), ``CUDA_VISIBLE_DEVICES="0,1"`` → ``[0, 1]`` (``gpu.devices``);
    any other value, or text the legacy reader refuses, is returned unchanged.
    """
    rule = LEGACY_ENV.get(key) if kind in ENV_KINDS else None
    if rule is None or isinstance(value, (dict, tuple)):
        return value
    try:
        parsed = rule[1](str(value))
    except (TypeError, ValueError):
        return value
    return value if parsed is UNSET else parsed
