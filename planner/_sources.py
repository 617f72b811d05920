"""Find profile layers along the search path and load them in precedence order, ``extends`` included.

Order, lowest first: ``base`` → every ``families/*.yaml`` → the machine profile(s) named on the command
line (``laptop`` when none) → the project file ``tkplan.yaml`` in the working directory. A layer's
``extends`` are loaded just before it; a layer reached twice is loaded once.

A name resolves to the first path on the search path where anything exists, so a FIFO, a directory or
a symlink loop named like a profile is reported there rather than skipped for a profile further on.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from tkplan.errors import ConfigError, Problem, ProfileNotFoundError
from tkplan.planner._yaml import Document, load_bytes, read_file, unreadable_hint

__all__ = ["DEFAULT_MACHINE", "PROJECT_FILE", "Layer", "SearchPath", "is_profile_file", "load_layers", "shipped_dir"]

DEFAULT_MACHINE = "laptop"  # tkplan: ignore[constant]  the documented layering rule
PROJECT_FILE = "tkplan.yaml"  # tkplan: ignore[constant]
SHIPPED_PREFIX = "tkplan:profiles"  # tkplan: ignore[constant]
MAX_EXTENDS = 32  # tkplan: ignore[constant]  bound on an `extends` chain (real ones are 2-3 long)


@attrs.frozen
class Layer:
    """One loaded profile layer.

    Attributes:
        name: the profile name (``base``, ``families/lightgbm``, ``kaggle_safe``, ``project``) or the file's
            display path.
        kind: ``base``, ``family``, ``machine``, ``project`` or ``file``.
        file: display path of the file (``tkplan:profiles/base.yaml`` for shipped ones).
        sha256: digest of the file's bytes.
        document: the layer's data (``extends`` removed) and positions.
        path: the file itself (absolute, links resolved), for whoever must read or watch it again; ``None``
            for a layer made in memory.
    """

    name: str
    kind: str
    file: str
    sha256: str
    document: Document
    path: Path | None = None


@attrs.frozen
class SearchPath:
    """Directories where profile names resolve, first match wins: project ``profiles/``, ``TKPLAN_PROFILE_PATH``,
    shipped."""

    dirs: tuple[Path, ...]
    cwd: Path

    @classmethod
    def from_env(cls, cwd: Path, env: Mapping[str, str]) -> SearchPath:
        """Build the search path for ``cwd``, with the entries of ``TKPLAN_PROFILE_PATH`` in ``env``."""
        extra = [Path(p) for p in env.get("TKPLAN_PROFILE_PATH", "").split(os.pathsep) if p]
        dirs = [cwd / "profiles", *[(cwd / p) for p in extra], shipped_dir()]
        return cls(tuple(dirs), cwd)

    def display(self, path: Path) -> str:
        """Return a stable display path: shipped files as ``tkplan:profiles/…``, others relative to cwd."""
        shipped = shipped_dir()
        resolved = _resolved(path)
        for base, prefix in ((shipped, SHIPPED_PREFIX), (self.cwd, "")):
            try:
                rel = resolved.relative_to(_resolved(base)).as_posix()
            except ValueError:
                continue
            if rel == ".":
                return prefix or "."
            return f"{prefix}/{rel}" if prefix else rel
        return path.as_posix()

    def candidates(self, name: str) -> list[Path]:
        """Every path where profile ``name`` may live, in search order."""
        rels = [f"{name}.yaml", f"{name}.yml"]
        if "/" not in name:
            rels += [f"machines/{name}.yaml", f"machines/{name}.yml"]
        return [d / rel for d in self.dirs for rel in rels]

    def find(self, name: str, origin: str = "") -> Path:
        """Return the file profile ``name`` resolves to.

        Raises:
            ProfileNotFoundError: no directory of the search path holds it.
        """
        tried = self.candidates(name)
        for path in tried:
            if os.path.lexists(path):
                return path
        raise ProfileNotFoundError(name, [self.display(d) or "." for d in self.dirs], origin)

    def family_files(self) -> list[tuple[str, Path]]:
        """Every ``families/<name>.yaml`` on the search path, the first of each name winning, sorted by name."""
        found: dict[str, Path] = {}
        for d in self.dirs:
            folder = d / "families"
            if folder.is_dir():
                for path in sorted(folder.glob("*.y*ml")):
                    found.setdefault(path.stem, path)
        return sorted(found.items())


@functools.cache
def shipped_dir() -> Path:
    """The directory of the profiles shipped with tkplan."""
    return Path(str(importlib.resources.files("tkplan.profiles")))


@functools.lru_cache(maxsize=1024)
def _resolved(path: Path) -> Path:
    """The absolute path without links, once per path during one `load_layers` (which clears it: links may
    change between calls). A symlink loop stays as it is, for reading to report."""
    return Path(os.path.realpath(path))


def is_profile_file(word: str) -> bool:
    """Whether a command-line word names a profile file rather than a profile name."""
    return "/" in word or os.sep in word or word.endswith((".yaml", ".yml"))


def load_layers(profiles: Sequence[str], search: SearchPath, *, project: bool = True) -> tuple[Layer, ...]:
    """Load every layer in precedence order, lowest first.

    Args:
        profiles: machine profile names or files from the command line; ``laptop`` when empty.
        search: where names resolve.
        project: whether to include ``tkplan.yaml`` from the working directory.

    Raises:
        ConfigError: a file is missing, unreadable, malformed or its ``extends`` form a cycle;
            every such problem of the compile is reported together.
    """
    _resolved.cache_clear()
    loader = _Loader(search)
    loader.add_name("base", "base", origin="")
    for name, path in search.family_files():
        loader.add_path(path, f"families/{name}", "family", origin="")
    for i, word in enumerate(profiles or [DEFAULT_MACHINE], start=1):
        origin = f"cli:arg {i}" if profiles else ""
        if is_profile_file(word):
            loader.add_path(search.cwd / word, search.display(search.cwd / word), "file", origin=origin)
        else:
            loader.add_name(word, "machine", origin=origin)
    project_file = search.cwd / PROJECT_FILE
    if project and os.path.lexists(project_file):
        loader.add_path(project_file, "project", "project", origin="")
    if loader.problems:
        raise ConfigError(loader.problems)
    return tuple(loader.layers)


class _Loader:
    """Depth-first loading with ``extends``, cycle detection and de-duplication."""

    def __init__(self, search: SearchPath) -> None:
        self.search = search
        self.layers: list[Layer] = []
        self.seen: set[Path] = set()
        self.problems: list[Problem] = []

    def add_name(self, name: str, kind: str, origin: str, chain: tuple[str, ...] = ()) -> None:
        try:
            path = self.search.find(name, origin)
        except ProfileNotFoundError as exc:
            self.problems.extend(exc.problems)
            return
        self.add_path(path, name, kind, origin, chain)

    def add_path(self, path: Path, name: str, kind: str, origin: str, chain: tuple[str, ...] = ()) -> None:
        path = _resolved(path)
        display = self.search.display(path)
        if display in chain:
            cycle = " → ".join((*chain, display))
            self.problems.append(Problem(f"`extends` cycle: {cycle}", origin=origin or display,
                                         hint="remove one of the extends"))
            return
        if path in self.seen:
            return
        if len(chain) >= MAX_EXTENDS:
            self.problems.append(Problem(f"`extends` chain longer than {MAX_EXTENDS} profiles: "
                                         f"{' → '.join((*chain[:3], '…', display))}", origin=origin or display,
                                         hint="extend fewer profiles, each holding more"))
            return
        try:
            raw = read_file(path)
        except OSError as exc:
            self.problems.append(Problem(f"cannot read profile {display}: {exc.strerror or exc}", origin=origin,
                                         hint=unreadable_hint(exc)))
            return
        try:
            document = load_bytes(raw, display)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return
        data = dict(document.data)
        extends = data.pop("extends", [])
        if not isinstance(extends, (str, list)):
            self.problems.append(Problem(f"`extends` must be a profile name or a list of them, got {extends!r}",
                                         path="extends", origin=document.where(("extends",)),
                                         hint="e.g. extends: [ci_fast, ../shared.yaml]"))
            extends = []
        for i, parent in enumerate([extends] if isinstance(extends, str) else extends):
            where = document.where(("extends",) if isinstance(extends, str) else ("extends", i))
            if not isinstance(parent, str):
                self.problems.append(Problem(f"`extends` entries must be profile names or paths, got {parent!r}",
                                             origin=where))
            elif is_profile_file(parent):
                self.add_path(path.parent / parent, self.search.display(path.parent / parent), "file", where,
                              (*chain, display))
            else:
                self.add_name(parent, "machine", where, (*chain, display))
        self.seen.add(path)
        positions = {k: v for k, v in document.positions.items() if k[:1] != ("extends",)}
        self.layers.append(Layer(name, kind, display, hashlib.sha256(raw).hexdigest(),
                                 Document(data, positions, display), path))

