"""families/ holds no hyperparameter of its own: every number an adapter uses comes from the step.

An `ast` pass over ``families/*.py`` reports numeric literals where settings hide: keyword arguments of
calls, comparison thresholds, ``min``/``max``/``clip`` bounds, ``UPPER_CASE`` constants, literal defaults
of parameters and ``.get(key, default)``. Only 0, 1 and -1 (and booleans) pass: they are counts, signs
and identities, not settings. ``tkplan audit families/`` must agree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

FAMILIES = Path(__file__).resolve().parents[2] / "families"
TRIVIAL = {0, 1, -1}
UPPER = re.compile(r"^_*[A-Z][A-Z0-9_]*$")


def number(node: ast.AST) -> float | int | None:
    """The value of a numeric literal (``3``, ``-0.5``), or None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    return None


def numbers_in(node: ast.AST) -> list[float | int]:
    """Every numeric literal in ``node`` that is not trivial."""
    found = []
    for child in ast.walk(node):
        value = number(child)
        if value is not None and value not in TRIVIAL:
            found.append(value)
    return found


def literal_default(node: ast.AST) -> bool:
    """Whether a default is a literal other than None/True/False/0/1/-1/""."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return False
    if value is None or isinstance(value, bool) or value == "" or value == ():
        return False
    return not (type(value) in (int, float) and value in TRIVIAL)


def findings(source: str) -> list[str]:
    """What the scan reports for one module's source, as ``line: what`` strings."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                value = number(kw.value)
                if value is not None and value not in TRIVIAL:
                    found.append(f"{line}: keyword {kw.arg}={value}")
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("min", "max", "clip", "clamp"):
                found += [f"{line}: bound {number(a)} in {name}()" for a in node.args
                          if number(a) is not None and number(a) not in TRIVIAL]
            if name == "get" and len(node.args) == 2 and literal_default(node.args[1]):
                found.append(f"{line}: .get default {ast.unparse(node.args[1])}")
        elif isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                value = number(side)
                if value is not None and (value not in TRIVIAL or isinstance(value, float)):
                    found.append(f"{line}: comparison with {value}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and UPPER.match(target.id) and node.value is not None:
                    if numbers_in(node.value) or number(node.value) is not None:
                        found.append(f"{line}: constant {target.id}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            found += [f"{line}: default {ast.unparse(d)} in {node.name}()" for d in defaults if literal_default(d)]
    return sorted(found, key=lambda text: int(text.split(":")[0]))


def test_the_scan_catches_hardcoded_settings():
    """The scan reports each way a setting hides in code (so an empty report means something)."""
    source = '''
NUM_THREADS = 4
def fit(x, depth=8, name="rf", flag=True, n=1):
    model = LGBMRegressor(num_leaves=96, verbose=-1)
    lr = params.get("learning_rate", 0.03)
    t = max(1, min(8, threads))
    if ratio > 0.1:
        pass
'''
    assert findings(source) == [
        "2: constant NUM_THREADS",
        "3: default 8 in fit()",
        '3: default \'rf\' in fit()',
        "4: keyword num_leaves=96",
        "5: .get default 0.03",
        "6: bound 8 in min()",
        "7: comparison with 0.1",
    ]


@pytest.mark.parametrize("path", sorted(FAMILIES.glob("*.py")), ids=lambda p: p.name)
def test_families_hold_no_numeric_hyperparameter(path):
    assert findings(path.read_text(encoding="utf-8")) == []


def test_tkplan_audit_reports_nothing_in_families():
    """The audit tool, run over families/, finds no hardcoded configuration value."""
    audit = pytest.importorskip("tkplan.tools.audit")
    result = audit.audit([str(FAMILIES)])
    assert result.files == len(list(FAMILIES.glob("*.py")))
    assert [f"{f.path}:{f.line} {f.kind} {f.key}={f.value!r}" for f in result.findings] == []
