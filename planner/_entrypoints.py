"""Check that each ``entrypoint: package.module:function`` of the campaign exists, without running any of it.

The module is found the way the step's process will import it — from the ``PYTHONPATH`` the plan gives the
step, this interpreter's packages, then the working directory (the executor starts each step there, and
puts it last on the step's path) — one package level at a time with ``importlib.machinery.PathFinder``, so
no package's ``__init__`` is executed (and no ML library imported). The function is looked for among the
names the module's source defines at its top level, read with ``ast``: a ``def``, a class, an assignment or
an import. A module without Python source (an extension) is taken on trust.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tkplan.errors import Problem
from tkplan.planner._merge import Provenance, last_where

__all__ = ["check_entrypoints", "entrypoint_files", "find_module", "top_level_names"]


def check_entrypoints(config: Mapping[str, Any], families: Iterable[str], provenance: Provenance,
                      cwd: Path) -> list[Problem]:
    """One problem per family of ``families`` whose entrypoint module or function does not exist."""
    problems = []
    for family in dict.fromkeys(families):
        section = config["families"][family]
        entrypoint = section.get("entrypoint")
        if not entrypoint:
            continue
        module, _, function = entrypoint.partition(":")
        paths = _pythonpath(config, section, cwd)
        key = f"families.{family}.entrypoint"
        origin = last_where(provenance, key)
        spec = find_module(module, paths, cwd)
        if spec is None:
            looked = ", ".join([*paths[:3], "the installed packages", str(cwd)])
            problems.append(Problem(f"entrypoint {entrypoint!r}: no module {module!r}", key, origin,
                                    f"looked in {looked}; create it in the project directory (tkplan init family "
                                    "NAME writes one) or put its directory on env.PYTHONPATH"))
            continue
        names = top_level_names(spec.origin)
        if names is not None and function not in names:
            problems.append(Problem(f"entrypoint {entrypoint!r}: {spec.origin} defines no {function!r}", key,
                                    origin, f"define `def {function}(ctx)` there, or name one of its functions"))
    return problems


def entrypoint_files(config: Mapping[str, Any], families: Iterable[str], cwd: Path) -> list[Path]:
    """The source files of the entrypoints of ``families`` that exist: what a cached compile must watch."""
    files = []
    for family in dict.fromkeys(families):
        section = config["families"][family]
        if section.get("entrypoint"):
            spec = find_module(section["entrypoint"].partition(":")[0], _pythonpath(config, section, cwd), cwd)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                files.append(Path(spec.origin))
    return files


def find_module(name: str, paths: Sequence[str], project: Path) -> importlib.machinery.ModuleSpec | None:
    """The spec of module ``name`` on ``paths``, then among the installed packages, then in ``project``, found
    without executing any package."""
    parts = name.split(".")
    spec = (importlib.machinery.PathFinder.find_spec(parts[0], list(paths)) or _installed(parts[0])
            or importlib.machinery.PathFinder.find_spec(parts[0], [str(project)]))
    for depth in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        fullname = ".".join(parts[: depth + 1])
        spec = (importlib.machinery.PathFinder.find_spec(fullname, list(spec.submodule_search_locations))
                or _installed(fullname, parent_loaded=True))
    return spec


def top_level_names(origin: str | None) -> set[str] | None:
    """Names a Python source file binds at its top level; ``None`` when there is no source to read."""
    if not origin or not origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(origin).read_bytes(), origin)
    except (OSError, SyntaxError, ValueError):
        return None  # the step will report it with its traceback
    names: set[str] = set()
    return names if _bind(tree.body, names) else None


def _bind(body: Sequence[ast.stmt], names: set[str]) -> bool:
    """Add the names ``body`` binds (in any branch of an ``if``/``try``/``with``); ``False`` on a star import."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "*" for a in node.names):
                return False
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        branches = [getattr(node, f, []) for f in ("body", "orelse", "finalbody")]
        branches += [h.body for h in getattr(node, "handlers", [])]
        if isinstance(node, (ast.If, ast.Try, ast.With)) and not all(_bind(b, names) for b in branches):
            return False
    return True


def _pythonpath(config: Mapping[str, Any], section: Mapping[str, Any], cwd: Path) -> list[str]:
    """Where the step's process looks first: its planned ``PYTHONPATH`` (relative entries from ``cwd``)."""
    pythonpath = section.get("runtime", {}).get("env", {}).get("PYTHONPATH") or config.get("env", {}).get("PYTHONPATH")
    return [str(cwd / p) for p in (pythonpath or "").split(os.pathsep) if p]


def _installed(name: str, *, parent_loaded: bool = False) -> importlib.machinery.ModuleSpec | None:
    """A top-level module from this interpreter's finders (editable installs included); a submodule only once
    its parent package is already loaded, so finding it executes nothing."""
    if parent_loaded and name.rpartition(".")[0] not in sys.modules:
        return None
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
