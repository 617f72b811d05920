"""Overrides from the environment and the command line, parsed and applied with their provenance.

Command-line words: one with ``=`` is an override (``key.path=value``; ``+key.path=value`` adds a key
that no layer has), one ending in ``.yaml``/``.yml`` or holding a ``/`` is a profile file, any other is
a profile name. Values parse as YAML scalars or flow collections.

Environment: ``TKPLAN__a__b=v`` sets ``a.b`` (double underscore = dot, names matched without regard to
case), and the legacy variables of the pipeline tkplan replaces map to keys (``LEGACY_ENV``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from tkplan.errors import ConfigError, Problem, did_you_mean
from tkplan.planner._merge import Provenance, Setting, dotted, set_path
from tkplan.planner._sources import is_profile_file
from tkplan.planner._yaml import parse_value

__all__ = ["ENV_PREFIX", "LEGACY_ENV", "PATH_ENV", "Override", "apply_overrides", "env_overrides", "split_words"]

ENV_PREFIX = "TKPLAN__"  # tkplan: ignore[constant]  the documented variable prefix
PATH_ENV = ("TKPLAN_PROFILE_PATH",)  # tkplan: ignore[constant]  a variable name, not a setting
"""Variables read by the search path rather than mapped to keys; recorded as used all the same."""


@attrs.frozen
class Override:
    """One ``key=value`` from the environment or the command line.

    Attributes:
        path: the key path as written.
        value: the parsed value.
        source: ``env:NAME``, ``cli:arg N`` or ``cli:--set N``.
        add: whether the key may be new (``+key=value``).
        fuzzy_case: whether the path matches existing keys without regard to case (env names).
    """

    path: tuple[str, ...]
    value: Any
    source: str
    add: bool = False
    fuzzy_case: bool = False


def _ints(text: str) -> list[int]:
    if text.strip() in ("", "-1"):
        return []
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _gb_or_none(text: str) -> float | None:
    value = float(text)
    return None if value == 0 else value


UNSET = object()
"""What a legacy parser returns when the variable's value asks for no override (``TRAINER_NO_ISOLATION=0``)."""

LegacyRule = tuple[str, Callable[[str], Any]]

LEGACY_ENV: Mapping[str, LegacyRule] = {
    "THREADS": ("run.threads", int),
    "TRAINER_GPU_IDS": ("gpu.devices", _ints),
    "CUDA_VISIBLE_DEVICES": ("gpu.devices", _ints),
    "TRAINER_NO_ISOLATION": ("isolation.force", lambda t: "inproc" if _flag(t) else UNSET),
    "TRAINER_FORCE_ISOLATION_FOR": ("isolation.process_for", _names),
    "TRAINER_CHILD_MEMCAP_GB": ("limits.memory_cap_gb", _gb_or_none),
    "SEQ_BACKEND": ("campaign.nn_backend", str.strip),
    "MAX_SPS": ("data.max_samples_per_symbol", int),
    "PYTHONHASHSEED": ("determinism.python_hash_seed", int),
    "TF_DETERMINISTIC_OPS": ("determinism.tf_deterministic_ops", _flag),
    "TF_CPP_MIN_LOG_LEVEL": ("logging.tf_log_level", str.strip),
    "TRAINER_TF_LOG_LEVEL": ("logging.tf_log_level", str.strip),
}
"""Legacy variable → (key, parser). ``CUDA_VISIBLE_DEVICES`` is read as NVML indices; ``-1`` or empty = no GPU."""


def split_words(words: Sequence[str], sets: Sequence[str] = ()) -> tuple[list[str], list[Override], list[Problem]]:
    """Split command-line words into profile names/files and overrides; ``sets`` are ``--set`` values.

    Returns:
        (profiles, overrides, problems), problems naming the argument they came from.
    """
    profiles: list[str] = []
    overrides: list[Override] = []
    problems: list[Problem] = []
    tagged = [(w, f"cli:arg {i}") for i, w in enumerate(words, 1)] + [(s, f"cli:--set {i}") for i, s in enumerate(sets, 1)]
    for word, source in tagged:
        if "=" not in word:
            if source.startswith("cli:--set"):
                problems.append(Problem(f"--set needs key=value, got {word!r}", origin=source))
            else:
                profiles.append(word)
            continue
        key, _, text = word.partition("=")
        add = key.startswith("+")
        key = key.lstrip("+").strip()
        if not key or any(not part for part in key.split(".")) or (is_profile_file(key) and "/" in key):
            problems.append(Problem(f"bad override {word!r}: expected key.path=value", origin=source))
            continue
        try:
            value = parse_value(text, source)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        overrides.append(Override(tuple(key.split(".")), value, source, add=add))
    return profiles, overrides, problems


def env_overrides(env: Mapping[str, str]) -> tuple[list[Override], dict[str, str], list[Problem]]:
    """Collect overrides from ``env``: legacy variables first, then ``TKPLAN__`` ones, each sorted by name.

    Returns:
        (overrides, the variables used with their values, problems). The variables used include
        ``TKPLAN_PROFILE_PATH`` when set: it chooses which profiles are found, so the plan records it.
    """
    overrides: list[Override] = []
    used: dict[str, str] = {name: env[name] for name in PATH_ENV if env.get(name)}
    problems: list[Problem] = []
    for name in sorted(n for n in env if n in LEGACY_ENV):
        key, parse = LEGACY_ENV[name]
        source = f"env:{name}"
        used[name] = env[name]
        try:
            value = parse(env[name])
        except ValueError:
            problems.append(Problem(f"cannot read {env[name]!r} for {key}", origin=source,
                                    hint=f"{name} maps to {key}; unset it or give a valid value"))
            continue
        if value is not UNSET:
            overrides.append(Override(tuple(key.split(".")), value, source))
    for name in sorted(n for n in env if n.startswith(ENV_PREFIX)):
        source = f"env:{name}"
        used[name] = env[name]
        parts = name[len(ENV_PREFIX):].split("__")
        if not all(parts):
            problems.append(Problem("bad variable name: expected TKPLAN__section__key", origin=source))
            continue
        try:
            value = parse_value(env[name], source)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        overrides.append(Override(tuple(parts), value, source, fuzzy_case=True))
    return overrides, used, problems


def apply_overrides(config: dict[str, Any], provenance: Provenance, overrides: Sequence[Override]) -> list[Problem]:
    """Apply ``overrides`` in order to ``config``; an override naming no existing key is a problem (unless ``add``)."""
    problems: list[Problem] = []
    for override in overrides:
        path = _resolve(config, override)
        if isinstance(path, Problem):
            problems.append(path)
            continue
        set_path(config, path, override.value, Setting(override.value, override.source), provenance)
    return problems


def _resolve(config: dict[str, Any], override: Override) -> tuple[str, ...] | Problem:
    """Match the override's path to existing keys; return the path or a problem saying what exists."""
    node: Any = config
    resolved: list[str] = []
    for i, part in enumerate(override.path):
        if not isinstance(node, dict):
            return Problem(f"{dotted(resolved)} is a value, not a mapping; cannot set {dotted(override.path)}",
                           origin=override.source)
        key = part
        if override.fuzzy_case and part not in node:
            key = next((k for k in node if k.lower() == part.lower()), part)
        if key not in node:
            if override.add:
                return (*resolved, *override.path[i:])
            hint = did_you_mean(part, node) or f"keys here: {', '.join(sorted(node)) or '(none)'}"
            if override.source.startswith("cli:"):  # only the command line can add keys
                hint += "; prefix with + to add a new key"
            return Problem(f"override names no key: {dotted(override.path)} ({dotted((*resolved, part))} does not exist)",
                           origin=override.source, hint=hint)
        resolved.append(key)
        node = node[key]
    return tuple(resolved)
