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
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tkplan._io import write_text_atomic

__all__ = ["cache_dir", "cache_key", "cache_root", "lookup", "referenced_env", "signature", "store", "watched_files"]

_PATTERNS = ("*.yaml", "*.yml", "machines/*.yaml", "machines/*.yml", "families/*.yaml", "families/*.yml")


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
    from tkplan.planner._overrides import ENV_PREFIX, LEGACY_ENV

    read = {} if hermetic else {k: v for k, v in sorted(env.items())
                                if k in LEGACY_ENV or k.startswith(ENV_PREFIX) or k == "TKPLAN_PROFILE_PATH"}
    if hardware_spec is None:
        from tkplan.planner._probe import probe_fingerprint

        hardware = "probe:" + probe_fingerprint()
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
    from tkplan.planner._yaml import read_file

    try:
        return hashlib.sha256(read_file(path)).hexdigest()
    except OSError:
        return "absent"
