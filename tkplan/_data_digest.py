"""Measure a data file for the plan: its size and the sha256 of its content, streamed, remembered by stat.

Hashing a large file on every compile would make ``tkplan compile`` heavy, so a digest is kept in a small
cache (``<cache dir>/data-digests/``) under the file's real path, size, modification time (ns), inode and
device, and reused while all of them are unchanged; any change to the file changes one of them and the file
is read again. The file is read in blocks, never whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tkplan._io import write_text_atomic
from tkplan.errors import DataError

if TYPE_CHECKING:  # the compile cache reads stat signatures without loading the planner
    from tkplan.planner import FileFacts, Resolved

__all__ = ["MeasuredFiles", "file_facts", "measure", "stat_signature"]

_SUBDIR = "data-digests"


def stat_signature(path: Path) -> str:
    """What identifies a file's version without reading it: real path, size, mtime (ns), inode, device.

    Raises:
        OSError: the file cannot be found or stat'ed.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    return json.dumps([real, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev])


def file_facts(path: Path, cache_dir: Path | None) -> FileFacts:
    """The size and sha256 of the file at ``path``, from the cache while the file is unchanged.

    Args:
        path: the data file.
        cache_dir: where digests are kept (``None``: hash the file, keep nothing).

    Raises:
        DataError: the file does not exist or cannot be read (names the path).
    """
    from tkplan.planner import FileFacts

    try:
        signature = stat_signature(path)
    except OSError as exc:
        raise DataError(f"data.source: no file {path} ({exc.strerror or exc}); check the path") from None
    entry = None
    if cache_dir is not None:
        entry = Path(cache_dir) / _SUBDIR / f"{hashlib.sha256(signature.encode()).hexdigest()}.json"
        try:
            cached = json.loads(entry.read_text("utf-8"))
            if cached["signature"] == signature:
                return FileFacts(int(cached["size"]), str(cached["sha256"]))
        except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: only a cache
            pass
    try:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise DataError(f"data.source: cannot read {path}: {exc.strerror or exc}") from None
    if entry is not None and stat_signature(path) == signature:  # unchanged while it was read
        try:
            write_text_atomic(entry, json.dumps({"signature": signature, "size": size, "sha256": digest}))
        except OSError:
            pass
    return FileFacts(size, digest)


def measure(resolved: Resolved, cwd: Path, cache_dir: Path | None) -> dict[str, FileFacts]:
    """The facts `compile_plan` needs about the data file of ``resolved`` (none for a built-in source)."""
    from tkplan.planner import data_file, file_source

    path = data_file(resolved, cwd)
    return {} if path is None else {str(file_source(resolved.config)): file_facts(path, cache_dir)}


class MeasuredFiles(Mapping[str, "FileFacts"]):
    """The facts of each data file a compile asks for, by ``data.source``, measured when first asked for.

    What `compile_sweep` takes as ``files``: the points of a sweep may read different files (a swept
    ``data.source``), known only once each point is resolved; each is measured once (`file_facts`).

    Raises:
        DataError: on lookup, a file that does not exist or cannot be read (names the path).
    """

    def __init__(self, cwd: Path, cache_dir: Path | None) -> None:
        self._cwd, self._cache_dir = Path(cwd), cache_dir
        self._facts: dict[str, FileFacts] = {}

    def __getitem__(self, source: str) -> FileFacts:
        if source not in self._facts:
            self._facts[source] = file_facts(self._cwd / source, self._cache_dir)
        return self._facts[source]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)
