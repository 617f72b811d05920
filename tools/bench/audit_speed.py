"""Benchmark: ``tkplan audit`` of a large real tree against a bare ``ast.parse`` of the same files.

Usage::

    python tools/bench/audit_speed.py [PATH ...] [--repeat N] [--workers N]

Without PATHs it audits the installed scikit-learn and torch Python sources (found with
``importlib.util.find_spec``; neither package is imported). Both sides are timed in this one run, on
warm file caches, best of ``--repeat``:

- bare: read and ``ast.parse`` every Python file the audit scans, serially, in this process;
- audit: the whole `tkplan.tools.audit.audit` call (discovery, scan in a process pool, sorting).

Target: audit time <= 1.5 x bare parse time. Prints files, findings, seconds, files/s and the ratio.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import sys
import time
from collections.abc import Sequence

import attrs

from tkplan.tools.audit import AuditSettings, audit
from tkplan.tools.audit._walk import discover

__all__ = ["default_paths", "main"]

TARGET_RATIO = 1.5  # tkplan: ignore[constant]


def default_paths() -> list[str]:
    """The source directories of the installed scikit-learn and torch, those that are installed."""
    paths = []
    for name in ("sklearn", "torch"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths.extend(spec.submodule_search_locations)
    return paths


def _bare_parse(files: Sequence[str]) -> float:
    start = time.perf_counter()
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            ast.parse(data)
        except (SyntaxError, ValueError):
            pass
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures; returns 0 when the target is met, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="trees to audit [default: installed sklearn and torch]")
    parser.add_argument("--repeat", type=int, default=3,  # tkplan: ignore[argparse_default]
                        help="runs of each side; the best counts")
    parser.add_argument("--workers", type=int, default=0, help="audit processes [default: usable CPUs]")
    args = parser.parse_args(argv)
    paths = args.paths or default_paths()
    if not paths:
        parser.error("no PATH given and neither scikit-learn nor torch is installed")
    settings = attrs.evolve(AuditSettings(), workers=args.workers)
    sources, _ = discover(paths, settings)
    python_files = [s.path for s in sources if s.language == "python"]
    for path in python_files:  # warm the page cache for both sides
        with open(path, "rb") as fh:
            fh.read()

    bare = min(_bare_parse(python_files) for _ in range(args.repeat))
    timings = []
    result = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = audit(paths, settings=settings)
        timings.append(time.perf_counter() - start)
    assert result is not None
    best = min(timings)
    ratio = best / bare if bare else float("inf")
    megabytes = sum(s.size for s in sources) / 2**20
    print(f"paths:          {', '.join(paths)}")
    print(f"files:          {len(sources)} ({len(python_files)} Python, {megabytes:.1f} MiB); "
          f"scanned {result.files}, skipped {len(result.skipped)}")
    print(f"findings:       {len(result.findings)}")
    print(f"workers:        {settings.worker_count()} (CPUs usable here: {len(os.sched_getaffinity(0))})")
    print(f"bare ast.parse: {bare:.2f} s  ({len(python_files) / bare:.0f} files/s, serial)")
    print(f"tkplan audit:   {best:.2f} s  ({len(sources) / best:.0f} files/s)  runs: "
          + ", ".join(f"{t:.2f}" for t in timings))
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio:          {ratio:.2f} x bare parse (target <= {TARGET_RATIO} x: {verdict})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
