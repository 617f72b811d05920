"""Overrides from the environment and the command line, parsed and applied with their provenance.

Command-line words: one with ``=`` or starting with ``~`` is an override in the grammar of `_grammar`
(``key=v`` sets, ``+key=v`` adds, ``++key=v`` adds or sets, ``~key[=v]`` removes), one ending in
``.yaml``/``.yml`` or holding a ``/`` is a profile file, any other is a profile name.

Environment: ``TKPLAN__a__b=v`` sets ``a.b`` (double underscore = dot, names matched without regard to
case), and the legacy variables of the pipeline tkplan replaces map to keys (``LEGACY_ENV``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from tkplan.errors import ConfigError, Problem, did_you_mean
from tkplan.planner._grammar import NO_VALUE, ChoiceSweep, RangeSweep, format_value, parse_override
from tkplan.planner._merge import Provenance, Setting, dotted, forget, set_path
from tkplan.planner._sources import is_profile_file
from tkplan.planner._yaml import MAX_DEPTH, parse_value

__all__ = ["ENV_PREFIX", "LEGACY_ENV", "PATH_ENV", "Override", "apply_overrides", "env_overrides", "split_words",
           "sweep_problems"]

ENV_PREFIX = "TKPLAN__"  # tkplan: ignore[constant]  the documented variable prefix
PATH_ENV = ("TKPLAN_PROFILE_PATH",)  # tkplan: ignore[constant]  a variable name, not a setting
"""Variables read by the search path rather than mapped to keys; recorded as used all the same."""


@attrs.frozen
class Override:
    """One ``key=value`` from the environment or the command line.

    Attributes:
        path: the key path as written.
        value: the parsed value (a sweep for ``tkplan sweep``; `NO_VALUE` for a bare ``~key``).
        source: ``env:NAME``, ``cli:arg N`` or ``cli:--set N``.
        op: ``=`` (set a key that exists), ``+`` (add a new key), ``++`` (add or set), ``~`` (remove).
        fuzzy_case: whether the path matches existing keys without regard to case (env names).
    """

    path: tuple[str, ...]
    value: Any
    source: str
    op: str = "="
    fuzzy_case: bool = False


def _devices(text: str) -> list[int | str]:
    """GPUs as CUDA reads them: NVML indices, ``GPU-<uuid>`` or ``MIG-…`` names, comma-separated.

    ``-1`` or empty = none.
    """
    if text.strip() in ("", "-1"):
        return []
    return [_device(part.strip()) for part in text.split(",") if part.strip()]


def _device(name: str) -> int | str:
    if name.startswith(("GPU-", "MIG-")) and len(name) > 4:
        return name
    return int(name)


def _hash_seed(text: str) -> int | str:
    """``PYTHONHASHSEED`` as Python reads it: ``random`` or an integer."""
    return "random" if text.strip() == "random" else int(text)


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
    "TRAINER_GPU_IDS": ("gpu.devices", _devices),
    "CUDA_VISIBLE_DEVICES": ("gpu.devices", _devices),
    "TRAINER_NO_ISOLATION": ("isolation.force", lambda t: "inproc" if _flag(t) else UNSET),
    "TRAINER_FORCE_ISOLATION_FOR": ("isolation.process_for", _names),
    "TRAINER_CHILD_MEMCAP_GB": ("limits.memory_cap_gb", _gb_or_none),
    "SEQ_BACKEND": ("campaign.nn_backend", str.strip),
    "MAX_SPS": ("data.max_samples_per_symbol", int),
    "PYTHONHASHSEED": ("determinism.python_hash_seed", _hash_seed),
    "TF_DETERMINISTIC_OPS": ("determinism.tf_deterministic_ops", _flag),
    "TF_CPP_MIN_LOG_LEVEL": ("logging.tf_log_level", str.strip),
    "TRAINER_TF_LOG_LEVEL": ("logging.tf_log_level", str.strip),
}
"""Legacy variable → (key, parser). ``CUDA_VISIBLE_DEVICES`` is read as NVML indices or GPU UUIDs (the planner
finds them in the hardware spec); ``-1`` or empty = no GPU."""


def split_words(words: Sequence[str], sets: Sequence[str] = ()) -> tuple[list[str], list[Override], list[Problem]]:
    """Split command-line words into profile names/files and overrides; ``sets`` are ``--set`` values.

    Returns:
        (profiles, overrides, problems), problems naming the argument they came from.
    """
    profiles: list[str] = []
    overrides: list[Override] = []
    problems: list[Problem] = []
    tagged = ([(w, f"cli:arg {i}") for i, w in enumerate(words, 1)]
              + [(s, f"cli:--set {i}") for i, s in enumerate(sets, 1)])
    for word, source in tagged:
        if "=" not in word and not word.startswith("~"):
            if source.startswith("cli:--set"):
                problems.append(Problem(f"--set needs key=value, got {word!r}", origin=source))
            else:
                profiles.append(word)
            continue
        if is_profile_file(word.partition("=")[0]) and "/" in word.partition("=")[0]:
            problems.append(Problem(f"bad override {word!r}: expected key.path=value", origin=source))
            continue
        try:
            parsed = parse_override(word, source)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        overrides.append(Override(parsed.path, parsed.value, source, op=parsed.op))
    return profiles, overrides, problems


def sweep_problems(overrides: Sequence[Override]) -> tuple[list[Override], list[Problem]]:
    """Split off the overrides whose value is a sweep, a problem each: a single compile takes one value per key.

    Returns:
        (the overrides with one value, a problem per sweep).
    """
    single = [o for o in overrides if not isinstance(o.value, (ChoiceSweep, RangeSweep))]
    return single, [Problem(f"{dotted(o.path)}={format_value(o.value)} is a sweep of several values; "
                    "`tkplan compile` takes one value per key", dotted(o.path), o.source,
                    "sweeps are for `tkplan sweep`; give one value here, and quote one that holds commas: key='a,b'")
            for o in overrides if isinstance(o.value, (ChoiceSweep, RangeSweep))]


def env_overrides(env: Mapping[str, str]) -> tuple[list[Override], dict[str, str], list[Problem]]:
    """Collect overrides from ``env``: legacy variables first, then ``TKPLAN__`` ones, each sorted by name.

    Returns:
        (overrides, the variables used with their values, problems). The variables used include
        ``TKPLAN_PROFILE_PATH`` when set: it chooses which profiles are found, so the plan records it.
    """
    env, problems = _text_only(env)
    overrides: list[Override] = []
    used: dict[str, str] = {name: env[name] for name in PATH_ENV if env.get(name)}
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


def _text_only(env: Mapping[str, str]) -> tuple[dict[str, str], list[Problem]]:
    """The environment less the variables tkplan reads whose name or value is not UTF-8 text; a problem for each.

    Python keeps such bytes as lone surrogates (``\udcff``), which no plan or message could hold.
    """
    kept: dict[str, str] = {}
    problems: list[Problem] = []
    for name, value in env.items():
        try:
            name.encode("utf-8"), value.encode("utf-8")
        except UnicodeEncodeError:
            if name in LEGACY_ENV or name in PATH_ENV or name.startswith(ENV_PREFIX):
                shown = name.encode("utf-8", "backslashreplace").decode()
                problems.append(Problem("the value is not UTF-8 text", origin=f"env:{shown}",
                                        hint=f"set {shown} to UTF-8 text, or unset it"))
            continue
        kept[name] = value
    return kept, problems


def apply_overrides(config: dict[str, Any], provenance: Provenance, overrides: Sequence[Override]) -> list[Problem]:
    """Apply ``overrides`` in order to ``config``; each one that cannot apply is a problem saying why.

    ``key=v`` needs the key to exist, ``+key=v`` needs it not to, ``++key=v`` takes either; ``~key`` needs
    it to exist, and ``~key=v`` also needs its value to be ``v``.
    """
    problems: list[Problem] = []
    for override in overrides:
        path = _too_deep(override) or _resolve(config, override)
        if isinstance(path, Problem):
            problems.append(path)
            continue
        exists = _exists(config, path)
        key = dotted(path)
        if override.op == "+" and exists:
            problems.append(Problem(f"+{key} adds a key, but {key} is already set", key, override.source,
                                    f"write {key}=value to change it, or ++{key}=value to add or change"))
        elif override.op == "~":
            parent = _node(config, path[:-1])
            if override.value is not NO_VALUE and parent[path[-1]] != override.value:
                problems.append(Problem(f"~{key}={format_value(override.value)} removes {key} only when it holds "
                                        f"that value; it holds {format_value(parent[path[-1]])}", key, override.source,
                                        f"write ~{key} to remove it whatever it holds"))
                continue
            del parent[path[-1]]
            provenance.pop(key, None)
            forget(provenance, path)
        else:
            set_path(config, path, override.value, Setting(override.value, override.source), provenance)
    return problems


def _too_deep(override: Override) -> Problem | None:
    """A key path longer than a document may nest (`MAX_DEPTH`) is refused before it is followed."""
    if len(override.path) <= MAX_DEPTH:
        return None
    return Problem(f"key path of {len(override.path)} parts, more than the {MAX_DEPTH} levels a configuration "
                   "may nest", origin=override.source, hint="name an existing key")


def _node(config: dict[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        config = config[key]
    return config


def _exists(config: dict[str, Any], path: Sequence[str]) -> bool:
    node: Any = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


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
            if override.op in ("+", "++"):
                return (*resolved, *override.path[i:])
            hint = did_you_mean(part, node) or f"keys here: {', '.join(sorted(node)) or '(none)'}"
            if override.source.startswith("cli:") and override.op == "=":  # only the command line can add keys
                hint += "; prefix with + to add a new key"
            verb = "removes" if override.op == "~" else "names"
            missing = dotted((*resolved, part))
            return Problem(f"override {verb} no key: {dotted(override.path)} ({missing} does not exist)",
                           origin=override.source, hint=hint)
        resolved.append(key)
        node = node[key]
    return tuple(resolved)
