"""Find the files an audit scans: Python, shell and config (YAML, JSON, TOML) files under the given paths.

Directories are walked in name order, following symbolic links; a link back to an enclosing
directory (a loop), a directory reached twice, a broken link, an unreadable directory and a file over
the size limit go to the ``skipped`` list with the reason, never to an exception. Other files (data,
docs, binaries) are ignored silently in directories; given by name, they are skipped with a reason.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import attrs

from tkplan.errors import AuditError

from ._config import AuditSettings
from ._findings import Skipped

__all__ = ["LANGUAGES", "TOOL_DIRS", "TOOL_FILES", "Source", "discover"]

LANGUAGES = {  # tkplan: ignore[constant]
    ".py": "python", ".sh": "shell", ".bash": "shell", ".yaml": "config", ".yml": "config", ".json": "config",
    ".toml": "config",
}
"""File suffixes scanned, and how."""

TOOL_FILES = frozenset(  # tkplan: ignore[constant]
    {
        "pyproject.toml", "Cargo.toml", "poetry.lock", "package.json", "package-lock.json", "tsconfig.json",
        "jsconfig.json", "composer.json", "renovate.json", ".pre-commit-config.yaml", ".pre-commit-hooks.yaml",
        "mkdocs.yml", "mkdocs.yaml", "environment.yml", "environment.yaml", "docker-compose.yml",
        "docker-compose.yaml", "compose.yaml", "compose.yml", ".readthedocs.yml", ".readthedocs.yaml",
        "codecov.yml", ".codecov.yml", ".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml", "meta.yaml",
        "Chart.yaml", "CITATION.cff", ".clang-format", "_config.yml",
    }
)
"""Configuration files of tools (packaging, CI, docs), not of training: never scanned as config files."""

TOOL_DIRS = frozenset(  # tkplan: ignore[constant]
    {".github", ".circleci", ".gitlab", ".devcontainer", ".vscode", ".idea"}
)
"""Directories whose config files belong to tools."""


@attrs.frozen
class Source:
    """A file to scan.

    Attributes:
        path: where to read it (as given, joined with the walked names).
        display: the POSIX path shown in reports and baselines.
        language: ``python``, ``shell`` or ``config`` (YAML, JSON, TOML).
        size: its size in bytes when found.
    """

    path: str
    display: str
    language: str
    size: int


def _display(path: str) -> str:
    text = Path(path).as_posix()
    return text[2:] if text.startswith("./") else text


_TOOL_FILE = "a tool's configuration (packaging, CI, docs), not a training one"
_NOT_SCANNED = "not a Python (.py), shell (.sh, .bash) or config (.yaml, .yml, .json, .toml) file"


def _tool_file(display: str) -> bool:
    parts = PurePosixPath(display).parts
    return parts[-1] in TOOL_FILES or not TOOL_DIRS.isdisjoint(parts[:-1])


class _Walker:
    def __init__(self, settings: AuditSettings) -> None:
        self.settings = settings
        self.globs = settings.excludes
        self.sources: list[Source] = []
        self.skipped: list[Skipped] = []
        self.seen_dirs: dict[tuple[int, int], str] = {}
        self.seen_files: dict[tuple[int, int], str] = {}

    def excluded(self, display: str, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(display, g) for g in self.globs)

    def add_file(self, path: str, display: str, info: os.stat_result, *, named: bool) -> None:
        language = LANGUAGES.get(os.path.splitext(path)[1])
        if language == "config" and _tool_file(display):
            if named:
                self.skipped.append(Skipped(display, _TOOL_FILE))
            return
        if language is None:
            if named:
                self.skipped.append(
                    Skipped(display, _NOT_SCANNED)
                )
            return
        key = (info.st_dev, info.st_ino)
        if key in self.seen_files:
            self.skipped.append(Skipped(display, f"same file as {self.seen_files[key]}"))
            return
        self.seen_files[key] = display
        if info.st_size > self.settings.max_file_bytes:
            self.skipped.append(
                Skipped(display, f"larger than {self.settings.max_file_bytes} bytes ({info.st_size}); "
                        "see max-file-bytes")
            )
            return
        self.sources.append(Source(path, display, language, info.st_size))

    def walk(self, path: str, display: str, info: os.stat_result, ancestors: frozenset[tuple[int, int]]) -> None:
        key = (info.st_dev, info.st_ino)
        if key in ancestors:
            self.skipped.append(Skipped(display, "symbolic link loop: points back to an enclosing directory"))
            return
        if key in self.seen_dirs:
            self.skipped.append(Skipped(display, f"same directory as {self.seen_dirs[key]}"))
            return
        self.seen_dirs[key] = display
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.skipped.append(Skipped(display, f"cannot list directory: {exc.strerror or exc}"))
            return
        inner = ancestors | {key}
        for entry in entries:
            child_display = f"{display}/{entry.name}" if display not in ("", ".") else entry.name
            if self.excluded(child_display, entry.name):
                continue
            try:
                child = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                self.skipped.append(Skipped(child_display, "broken symbolic link"))
                continue
            except OSError as exc:
                reason = "symbolic link loop" if exc.errno == errno.ELOOP else f"cannot stat: {exc.strerror or exc}"
                self.skipped.append(Skipped(child_display, reason))
                continue
            if stat.S_ISDIR(child.st_mode):
                self.walk(entry.path, child_display, child, inner)
            elif stat.S_ISREG(child.st_mode):
                self.add_file(entry.path, child_display, child, named=False)


def discover(
    paths: Iterable[str | os.PathLike[str]], settings: AuditSettings
) -> tuple[tuple[Source, ...], tuple[Skipped, ...]]:
    """Return the files to scan under ``paths`` and what was skipped, both sorted by display path.

    Raises:
        AuditError: a path does not exist.
    """
    walker = _Walker(settings)
    for raw in paths:
        path = os.fspath(raw)
        display = _display(path)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise AuditError(f"{path}: no such file or directory") from None
        except OSError as exc:
            raise AuditError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if stat.S_ISDIR(info.st_mode):
            walker.walk(path, display, info, frozenset())
        elif stat.S_ISREG(info.st_mode):
            walker.add_file(path, display, info, named=True)
        else:
            walker.skipped.append(Skipped(display, "not a regular file or directory"))
    sources = tuple(sorted(walker.sources, key=lambda s: s.display))
    skipped = tuple(sorted(walker.skipped, key=lambda s: (s.path, s.reason)))
    return sources, skipped
