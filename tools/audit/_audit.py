"""Run an audit: discover the files, scan each once (in a process pool for large trees), sort the results.

A small tree (fewer than ``settings.serial_below`` files) is scanned in this process, where starting
workers would cost more than it saves. A large one is cut into chunks, largest files first, each chunk
up to ``settings.chunk_bytes`` and ``settings.chunk_files``, and spread over ``settings.worker_count()``
processes. If a pool cannot be started here (no ``fork``/semaphores in a sandbox), the scan runs
serially instead: the result is the same either way.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import attrs

from ._config import AuditSettings
from ._configfile import scan_config
from ._findings import AuditResult, Finding, Skipped
from ._scan import FileScan, scan_python
from ._shell import scan_shell
from ._vocab import profile_leaf_names, shipped_names
from ._walk import Source, discover

__all__ = ["audit", "chunk_sources", "scan_source"]


def scan_source(source: Source, settings: AuditSettings) -> FileScan:
    """Read and scan one file; any problem with it becomes a skip reason, never an exception."""
    try:
        with open(source.path, "rb") as fh:
            data = fh.read(settings.max_file_bytes + 1)
    except OSError as exc:
        return FileScan(source.display, skipped=f"cannot read: {exc.strerror or exc}")
    if len(data) > settings.max_file_bytes:
        return FileScan(source.display, skipped=f"larger than {settings.max_file_bytes} bytes; see max-file-bytes")
    try:
        if source.language == "shell":
            return scan_shell(source.display, data, settings)
        if source.language == "config":
            return scan_config(source.display, data, settings)
        return scan_python(source.display, data, settings)
    except Exception as exc:
        return FileScan(source.display, skipped=f"internal error while scanning: {exc.__class__.__name__}: {exc}")


def _scan_chunk(sources: Sequence[Source], settings: AuditSettings) -> list[FileScan]:
    return [scan_source(s, settings) for s in sources]


def _init_worker() -> None:
    """Pool workers scan acyclic syntax trees that reference counting frees: the cyclic GC would only
    re-walk each live tree on every collection. A worker is ours and ends with the audit."""
    gc.disable()


def chunk_sources(sources: Sequence[Source], settings: AuditSettings) -> list[list[Source]]:
    """Cut ``sources`` into pool tasks: largest files first, each task within the chunk limits."""
    limit_bytes = max(settings.chunk_bytes, 1)
    limit_files = max(settings.chunk_files, 1)
    chunks: list[list[Source]] = []
    current: list[Source] = []
    size = 0
    for source in sorted(sources, key=lambda s: (-s.size, s.display)):
        if current and (size + source.size > limit_bytes or len(current) >= limit_files):
            chunks.append(current)
            current, size = [], 0
        current.append(source)
        size += source.size
    if current:
        chunks.append(current)
    return chunks


def _scan_all(sources: Sequence[Source], settings: AuditSettings) -> list[FileScan]:
    workers = settings.worker_count()
    if workers <= 1 or len(sources) <= 1 or len(sources) < settings.serial_below:
        return _scan_chunk(sources, settings)
    chunks = chunk_sources(sources, settings)
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), initializer=_init_worker) as pool:
            futures = [pool.submit(_scan_chunk, chunk, settings) for chunk in chunks]
            return [scan for future in futures for scan in future.result()]
    except (OSError, BrokenProcessPool, NotImplementedError, AssertionError):
        # no semaphores or fork in a sandbox; AssertionError: called from a daemonic process
        # (a multiprocessing.Pool worker), which may not have children
        return _scan_chunk(sources, settings)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def audit(
    paths: Iterable[str | os.PathLike[str]],
    *,
    settings: AuditSettings | None = None,
    profiles: Iterable[str | os.PathLike[str]] = (),
) -> AuditResult:
    """Find the hardcoded configuration values in the Python, shell and config files under ``paths``.

    Args:
        paths: files and directories to scan.
        settings: what to report and how to run; `AuditSettings` defaults when ``None``.
        profiles: YAML profile files or directories; their keys join the vocabulary of setting names
            (`Vocabulary`), and every finding's ``status`` says
            whether a profile holds its value (see `mark_findings`).

    Returns:
        The findings and the skipped files, both sorted, and the number of files scanned.

    Raises:
        AuditError: a path does not exist, or a profile cannot be loaded.

    .. versionadded:: 0.1
    """
    settings = settings or AuditSettings()
    paths = list(paths)
    profile_paths = list(profiles)
    index = None
    vocabulary = shipped_names() | settings.vocabulary
    if profile_paths:
        from ._profiles import load_profiles

        index = load_profiles(profile_paths)
        vocabulary |= profile_leaf_names(index.entries)
    settings = attrs.evolve(settings, vocabulary=vocabulary)
    sources, skipped = discover(paths, settings)
    if profile_paths:  # the profiles themselves are not config files in the tree
        roots = [os.path.realpath(p) for p in profile_paths]
        sources = tuple(s for s in sources if s.language != "config" or not _under(os.path.realpath(s.path), roots))
    scans = _scan_all(sources, settings)
    findings: list[Finding] = []
    notes: list[str] = []
    skips: list[Skipped] = list(skipped)
    scanned = 0
    for scan in scans:
        if scan.skipped:
            skips.append(Skipped(scan.path, scan.skipped))
            continue
        scanned += 1
        findings.extend(scan.findings)
        notes.extend(scan.notes)
    findings.sort(key=Finding.sort_key)
    result_findings: tuple[Finding, ...] = tuple(findings)
    if index is not None:
        from ._profiles import mark_findings

        result_findings = mark_findings(result_findings, index)
    return AuditResult(
        findings=result_findings,
        skipped=tuple(sorted(skips, key=lambda s: (s.path, s.reason))),
        files=scanned,
        notes=tuple(sorted(notes)),
    )
