"""Who may import whom: every module's tkplan imports checked against one table (docs/CONVENTIONS.md).

Each module of ``tkplan/``, ``planner/``, ``runtime/``, ``families/`` and ``tools/`` is parsed (never imported);
every ``import`` and ``from … import`` counts, at module level or inside a function, and so do the places
that name a module in a string: ``importlib.import_module("…")``, ``"package.module:function"`` references
and the values of a lazy ``_EXPORTS`` table. ``planner/`` may not import an ML library at all.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"tkplan": "tkplan", "planner": "tkplan.planner", "runtime": "tkplan.runtime",
           "families": "tkplan.families", "tools": "tkplan.tools"}

# Layers, by module prefix (the longest prefix wins); the rest of ``tkplan.*`` is the CLI layer, and so are the
# click commands that live next to their tool (``tkplan.tools.<tool>._cli``).
LAYERS = {
    "tkplan.errors": "core", "tkplan._io": "core", "tkplan._lazy": "core", "tkplan._text": "core",
    "tkplan.planner": "planner", "tkplan.runtime": "runtime", "tkplan.families": "families",
    "tkplan.tools": "tools", "tkplan.tools.audit": "audit", "tkplan.tools.bench": "bench",
    "tkplan.tools.report": "report", "tkplan.tools.track": "track",
    "tkplan.tools.audit._cli": "cli", "tkplan.tools.report._cli": "cli", "tkplan.tools.track._cli": "cli",
    "tkplan": "cli",
}

# What each layer may import besides itself and ``core``. ``X`` allows module X only (a package: its public
# names); ``X.*`` allows X and every module below it, private ones included. Each entry's reason is in
# docs/CONVENTIONS.md.
PLAN_MODEL = ("tkplan.planner._plan", "tkplan.planner._convert", "tkplan.planner._hardware")
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": (),
    "planner": (),
    "runtime": (*PLAN_MODEL, "tkplan.planner._nodes", "tkplan.planner._probe", "tkplan._data_digest",
                "tkplan.planner._history"),
    "families": ("tkplan.planner._plan", "tkplan.planner._convert", "tkplan.runtime._context"),
    "tools": (),
    "audit": ("tkplan", "tkplan.planner.*"),
    "bench": ("tkplan.*",),
    "report": (*PLAN_MODEL, "tkplan.runtime"),
    "track": (*PLAN_MODEL, "tkplan.runtime", "tkplan.tools.report"),
    "cli": ("tkplan.planner", "tkplan.runtime", "tkplan.families", "tkplan.tools.audit", "tkplan.tools.report",
            "tkplan.tools.track"),
}

# Imports that break the table today and are wrong in the code, each with its fix (docs/CONVENTIONS.md).
# The test fails when one of them disappears, so that this list only shrinks.
KNOWN: set[tuple[str, str]] = set()

ML_LIBRARIES = frozenset({"torch", "tensorflow", "keras", "lightgbm", "xgboost", "sklearn", "ngboost", "ray",
                          "optuna", "mlflow", "matplotlib"})


def layer(module: str) -> str:
    """The layer a ``tkplan.*`` module belongs to."""
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package with its dotted name (``tkplan/``'s links to the other folders skipped)."""
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if folder == "tkplan" and parts[0] in SOURCES:
                continue
            names = [package, *parts]
            yield ".".join(names[:-1] if names[-1] == "__init__" else names), path


def is_module(name: str) -> bool:
    """Whether the dotted ``tkplan.*`` name is a module or package of the source tree."""
    parts = name.split(".")[1:]
    path = ROOT / parts[0] if parts and parts[0] in SOURCES else ROOT / "tkplan"
    path = path.joinpath(*parts[1:]) if parts and parts[0] in SOURCES else path.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(module: str, source: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import in ``source``, wherever it stands."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from tkplan import errors`` imports the module tkplan.errors, ``from tkplan import x`` tkplan
                full = f"{base}.{alias.name}"
                yield (full if full.startswith("tkplan") and is_module(full) else base), node.lineno
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("tkplan."):
            target = node.value.split(":", 1)[0]
            if ":" in node.value or is_module(target):
                yield target, node.lineno


def allowed(source_layer: str, target: str) -> bool:
    """Whether a module of ``source_layer`` may import ``target``."""
    if layer(target) in (source_layer, "core"):
        return True
    return any(target == p or (p.endswith(".*") and (target == p[:-2] or target.startswith(p[:-1])))
               for p in ALLOWED[source_layer])


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every import in ``source`` that the table forbids to ``module``, as ``module:line -> target``."""
    found = []
    for target, line in imported(module, source, is_package):
        top = target.split(".")[0]
        if layer(module) == "planner" and top in ML_LIBRARIES:
            found.append(f"{module}:{line} -> {target} (an ML library in the planner)")
        elif top == "tkplan" and not allowed(layer(module), target) and (module, target) not in KNOWN:
            found.append(f"{module}:{line} -> {target}")
    return found


def test_every_import_is_allowed_by_the_table():
    found = [v for module, path in modules()
             for v in violations(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")]
    assert found == [], "imports the layering table forbids:\n" + "\n".join(found)


def test_known_exceptions_still_exist():
    present = {(module, target) for module, path in modules()
               for target, _ in imported(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")}
    assert KNOWN - present == set(), "fixed: remove these from KNOWN and from docs/CONVENTIONS.md"


@pytest.mark.parametrize(("module", "source", "expected"), [
    pytest.param("tkplan.planner._rules", "def f():\n    import torch\n",
                 ["tkplan.planner._rules:2 -> torch (an ML library in the planner)"], id="ml-in-function"),
    pytest.param("tkplan.planner._rules", "from sklearn.linear_model import Ridge\n",
                 ["tkplan.planner._rules:1 -> sklearn.linear_model (an ML library in the planner)"], id="ml-from"),
    pytest.param("tkplan.planner._rules", "from tkplan.runtime import execute\n",
                 ["tkplan.planner._rules:1 -> tkplan.runtime"], id="planner-to-runtime"),
    pytest.param("tkplan.runtime._local", "from ..planner import _rules\n",
                 ["tkplan.runtime._local:1 -> tkplan.planner._rules"], id="relative"),
    pytest.param("tkplan.runtime._local", "import importlib\nimportlib.import_module('tkplan.planner._rules')\n",
                 ["tkplan.runtime._local:2 -> tkplan.planner._rules"], id="by-string"),
    pytest.param("tkplan.families._gbdt", "from tkplan.runtime._executor import execute\n",
                 ["tkplan.families._gbdt:1 -> tkplan.runtime._executor"], id="families-to-executor"),
    pytest.param("tkplan.runtime._local", "from tkplan.planner._plan import Step\nfrom tkplan import errors\n",
                 [], id="plan-model-and-core"),
    pytest.param("tkplan.cli", "from tkplan.planner import compile_plan\n", [], id="cli-public-planner"),
])
def test_the_checker_flags_forbidden_imports(module, source, expected):
    assert violations(module, source) == expected
