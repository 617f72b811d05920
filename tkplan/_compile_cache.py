"""A content-addressed cache of compiled plans, so that ``tkplan compile`` with unchanged inputs is instant.

The key covers everything a compile reads: the tkplan version, the command-line words, the environment
variables tkplan reads, the working directory, and the hardware (a cheap fingerprint of the probe's
sources, or the content of a ``--hardware`` spec). An entry also records the content of every file
that could take part — each layer loaded, and every profile file on the search path, present or
absent — and the variables its profiles refer to (``${env:NAME}``), set or not, and the stat signature of
the data file (``tkplan._data_digest``), and is used only while all of them are unchanged. Any change
misses; nothing is ever stale.
An entry is also checked before it is served: its digest (sha256 of all it holds: plan text, summary,
plan hash, watched files and variables) is recomputed, so a damaged or edited entry is compiled again.
Only regular files are read (a FIFO on the search path must not hang the lookup).

Entries live in ``$TKPLAN_CACHE_DIR`` (default ``$XDG_CACHE_HOME/tkplan`` or ``~/.cache/tkplan``).

`compile_cached` is the whole of ``tkplan compile``: look the entry up, or compile afresh (`compile_measured`:
resolve, measure the data file, plan) and store it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tkplan._io import write_text_atomic

if TYPE_CHECKING:
    from tkplan.planner import CompileRequest, Explanation, HardwareSpec, Plan, Resolved

__all__ = [
    "cache_dir",
    "cache_key",
    "cache_root",
    "compile_cached",
    "compile_fresh",
    "compile_measured",
    "explain_key",
    "hardware_for",
    "history_snapshot",
    "lookup",
    "read_snapshot",
    "referenced_env",
    "signature",
    "store",
    "store_path",
    "watched_files",
]

_PATTERNS = ("*.yaml", "*.yml", "machines/*.yaml", "machines/*.yml", "families/*.yaml", "families/*.yml")


def compile_cached(words: Sequence[str], sets: Sequence[str], env: Mapping[str, str], cwd: Path, hermetic: bool,
                   hardware_spec: str | None, version: str, *, use_cache: bool = True,
                   history: str | None = None) -> dict[str, Any]:
    """The cache entry of a compile of ``words`` and ``--set`` values ``sets`` (a `CompileRequest`'s parts) for
    ``hardware_spec`` (``None``: this machine), compiled and stored when the cache has no valid one (or
    ``use_cache`` is false). A hit loads nothing of the compile pipeline. ``history``: the history store to plan
    with (``none``, a path, or ``None`` for the profile's ``history.store``).

    Returns:
        The entry: ``plan`` (the plan.json text), ``summary`` (the rendered table and the expected makespan),
        ``plan_hash``, ``warning`` (why the history store could not be read, or empty), and what it watches (see
        `lookup`; the history store too, so that a run that adds to it misses).

    Raises:
        ConfigError, HardwareError, PlanningError, DataError: as `compile_measured`.
    """
    from tkplan.planner import SearchPath

    read = {} if hermetic else env
    search = SearchPath.from_env(cwd, read)
    directory = cache_dir(env)
    args = [*words, *(f"--set={s}" for s in sets), *([f"--history={history}"] if history is not None else [])]
    key = cache_key(version, args, env, cwd, hermetic, hardware_spec)
    entry = lookup(directory, key, search.dirs, read) if use_cache else None
    if entry is None:
        from tkplan.planner import CompileRequest

        request = CompileRequest(words=tuple(words), sets=tuple(sets), env=dict(env), cwd=cwd, hermetic=hermetic)
        entry = compile_fresh(request, hardware_spec, version, search, history)
        store(directory, key, entry)
    return entry


def compile_fresh(request: CompileRequest, hardware_spec: str | None, version: str, search: Any,
                  history: str | None = None) -> dict[str, Any]:
    """Compile ``request`` from scratch into a cache entry that watches every file and variable it read."""
    from tkplan._data_digest import stat_signature
    from tkplan._render import render_forecast, render_plan_summary
    from tkplan.planner import PROJECT_FILE, entrypoint_files, forecast, plan_to_json, resolve

    hardware, source = hardware_for(hardware_spec)
    resolved = resolve(request)
    store_file, snapshot, warning = history_snapshot(history, resolved.config, hardware, request)
    plan = compile_measured(request, hardware, source, version, resolved=resolved, history=snapshot)
    data: dict[str, str | None] = ({} if plan.data.sha256 is None else
                                   {str(p): stat_signature(p) for p in [search.cwd / plan.data.source]})
    if store_file is not None:  # a run that adds to the store, or a store appearing, must miss the cache
        data[str(store_file)] = signature(store_file)
    runs = next((len(d.value) for d in plan.schedule.derivations if d.key == "history"), None)
    summary = render_plan_summary(plan) + "\n\n" + render_forecast(forecast(plan), runs, snapshot)
    layer_files = [layer.path for layer in resolved.layers if layer.path is not None]
    layer_files += entrypoint_files(plan.config, [s.family for s in plan.steps], search.cwd)  # checked at compile
    return {"plan": plan_to_json(plan), "summary": summary, "plan_hash": plan.plan_hash, "warning": warning,
            "files": watched_files(search.dirs, layer_files, search.cwd / PROJECT_FILE),
            "env": referenced_env(plan.provenance, request.effective_env), "data": data}


def explain_key(key: str, request: CompileRequest, hardware_spec: str | None, version: str,
                history: str | None = None) -> tuple[Explanation, str]:
    """Where ``key``'s value came from: its chain of settings when the configuration has it, else the
    derivations of a plan compiled for ``hardware_spec`` (``None``: this machine) with the history store
    ``history`` (as `compile_cached` takes it); and why that store could not be read (or empty).

    Raises:
        ConfigError, HardwareError, PlanningError, DataError: as `compile_measured`.
    """
    from tkplan.planner import explain_config, explain_plan, resolve

    resolved = resolve(request)
    explanation = explain_config(key, resolved.provenance)
    warning = ""
    if explanation is None:
        hardware, source = hardware_for(hardware_spec)
        _, snapshot, warning = history_snapshot(history, resolved.config, hardware, request)
        plan = compile_measured(request, hardware, source, version, resolved=resolved, history=snapshot)
        explanation = explain_plan(key, plan, resolved.provenance)
    return explanation, warning


def history_snapshot(setting: str | None, config: Mapping[str, Any], hardware: HardwareSpec,
                     request: CompileRequest) -> tuple[Path | None, Any, str]:
    """The history store a compile plans with (``setting``: ``none``, a path, or ``None`` for the profile's
    ``history.store``), its snapshot for ``hardware``, and why it could not be read (planned cold) or empty.
    """
    store_file = store_path(setting or str(config["history"]["store"]), request.env, request.cwd)
    snapshot, warning = read_snapshot(store_file, hardware)
    return store_file, snapshot, warning


def compile_measured(request: CompileRequest, hardware: HardwareSpec, source: str, version: str, *,
                     resolved: Resolved | None = None, history: Any = None) -> Plan:
    """Resolve ``request`` (unless ``resolved`` is given), measure its data file (the digest cache lives under
    the compile cache) and compile the plan for ``hardware`` (with ``history``, a snapshot of the store, if any).

    Raises:
        ConfigError: the inputs are invalid.
        PlanningError: the configuration cannot be honoured on ``hardware``.
        DataError: the data file cannot be read.
    """
    from tkplan._data_digest import measure
    from tkplan.planner import compile_plan, resolve

    resolved = resolved or resolve(request)
    files = measure(resolved, request.cwd, cache_dir(request.env))
    return compile_plan(request, hardware, source, version, files, resolved=resolved, history=history)


def hardware_for(spec: str | None) -> tuple[HardwareSpec, str]:
    """The machine to plan for and its source as the plan records it: this one probed (``probe``), or the spec
    file ``spec`` (its name).

    Raises:
        HardwareError: the spec file is unreadable or invalid.
    """
    from tkplan.planner import load_hardware, probe

    if spec is None:
        return probe(), "probe"
    return load_hardware(spec), Path(spec).name


def cache_dir(env: Mapping[str, str]) -> Path:

    """Where entries live: ``TKPLAN_CACHE_DIR``, else the XDG cache directory."""
    if env.get("TKPLAN_CACHE_DIR"):
        return Path(env["TKPLAN_CACHE_DIR"])
    return cache_root(env) / "compile"


def cache_root(env: Mapping[str, str]) -> Path:
    """tkplan's cache directory: ``TKPLAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/tkplan`` (``~/.cache/tkplan``)."""
    if env.get("TKPLAN_CACHE_DIR"):
        return Path(env["TKPLAN_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tkplan"


def cache_key(version: str, args: Sequence[str], env: Mapping[str, str], cwd: Path, hermetic: bool,
              hardware_spec: str | None) -> str:
    """The key of one compile: every input except the profile files' content (checked per entry)."""
    import tkplan.planner as planner

    read = {} if hermetic else {k: v for k, v in sorted(env.items())
                                if k in planner.LEGACY_ENV or k.startswith(planner.ENV_PREFIX)
                                or k == "TKPLAN_PROFILE_PATH"}
    if hardware_spec is None:
        hardware = "probe:" + planner.probe_fingerprint()
    else:
        hardware = "spec:" + _digest(Path(hardware_spec))
    payload = json.dumps([version, list(args), read, str(cwd), hermetic, hardware], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def watched_files(search_dirs: Iterable[Path], layer_files: Iterable[Path], project_file: Path) -> dict[str, str]:
    """Digest of every file that can take part in a compile: profiles on the search path, the layers, and
    the project file (``absent`` when there is none: creating it later must miss the cache)."""
    paths = _listed(search_dirs)
    paths.update(layer_files)
    paths.add(project_file)
    return {str(p): _digest(p) for p in sorted(paths)}


def _listed(search_dirs: Iterable[Path]) -> set[Path]:
    return {p for d in search_dirs for pattern in _PATTERNS for p in d.glob(pattern)}


def referenced_env(provenance: Mapping[str, Sequence[Mapping[str, object]]],
                   env: Mapping[str, str]) -> dict[str, str | None]:
    """The variables that a plan's references read (``env:NAME`` steps of its provenance), with their values
    in ``env`` (``None`` when unset: setting one later must miss the cache)."""
    names = {str(hop["key"])[4:] for chain in provenance.values() for hop in chain[-1].get("via", ())  # type: ignore[attr-defined]
             if str(hop["key"]).startswith("env:")}
    return {name: env.get(name) for name in sorted(names)}


def lookup(directory: Path, key: str, search_dirs: Iterable[Path], env: Mapping[str, str]) -> dict[str, object] | None:
    """The entry for ``key`` if it exists and every file and variable it watched is unchanged; else ``None``.

    An entry holds ``plan`` (the plan.json text), ``summary`` (the rendered table), ``files``
    (path → sha256, or ``absent``), ``env`` (variable → value, or ``null``, read through references) and
    ``data`` (the data file's path → its stat signature, and the history store's: a run that adds to it misses).
    """
    try:
        entry = json.loads((directory / f"{key}.json").read_text("utf-8"))
        if any(env.get(name) != value for name, value in entry["env"].items()):
            return None
        files = entry["files"]
        if not {str(p) for p in _listed(search_dirs)} <= set(files):
            return None  # a new profile appeared on the search path: it may shadow one that was used
        if any(_digest(Path(path)) != digest for path, digest in files.items()):
            return None
        if any(signature(Path(path)) != seen for path, seen in entry.get("data", {}).items()):
            return None
        if not all(isinstance(entry[k], str) for k in ("plan", "summary", "plan_hash")) or not _intact(entry):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # unreadable or damaged: only a cache
        return None
    return entry


def store(directory: Path, key: str, entry: Mapping[str, object]) -> None:
    """Save an entry with its digest; a cache that cannot be written is skipped silently (it is only a cache)."""
    try:
        write_text_atomic(directory / f"{key}.json", json.dumps({**entry, "digest": _entry_digest(entry)},
                                                                sort_keys=True))
    except OSError:
        pass


def _entry_digest(entry: Mapping[str, object]) -> str:
    """The sha256 of everything an entry holds but the digest itself: what it serves and what it is checked against."""
    served = {k: v for k, v in entry.items() if k != "digest"}
    return hashlib.sha256(json.dumps(served, sort_keys=True).encode()).hexdigest()


def _intact(entry: Mapping[str, object]) -> bool:
    """Whether an entry is exactly as stored: its digest matches what it serves, and its plan is the one it names."""
    return (entry.get("digest") == _entry_digest(entry)
            and json.loads(str(entry["plan"])).get("plan_hash") == entry["plan_hash"])


def signature(path: Path) -> str | None:
    """The stat signature of ``path`` (``tkplan._data_digest.stat_signature``), ``None`` when it is absent."""
    from tkplan._data_digest import stat_signature

    try:
        return stat_signature(path)
    except OSError:
        return None


def _digest(path: Path) -> str:
    from tkplan.planner import read_file

    try:
        return hashlib.sha256(read_file(path)).hexdigest()
    except OSError:
        return "absent"


STORE_FILE = "history.sqlite"  # tkplan: ignore[constant]  the history store's name in the cache root


def store_path(setting: str, env: Mapping[str, str], root: Path) -> Path | None:
    """The store ``setting`` names (``auto``, ``none`` or a path relative to ``root``); ``None`` for ``none``."""
    if setting == "none":
        return None
    if setting == "auto":
        return cache_root(env) / STORE_FILE
    path = Path(setting).expanduser()
    return path if path.is_absolute() else root / path


def read_snapshot(store: Path | None, hardware: Any) -> tuple[Any, str]:
    """The snapshot of ``store`` for ``hardware`` and a warning: a store that cannot be read plans cold, and says so.

    Returns:
        ``(History or None, warning)``: ``None`` when history is off or the store does not exist yet; the
        warning is empty when the store was read (or history is off).
    """
    if store is None or not store.exists():  # off, or nothing recorded yet: a cold plan, without loading the store
        return None, ""
    from tkplan.errors import HistoryError
    from tkplan.planner import hardware_fingerprint
    from tkplan.runtime import read_history

    try:
        return read_history(store, hardware_fingerprint(hardware)), ""
    except HistoryError as exc:
        return None, f"warning: {exc}; this plan was compiled without history"
