"""Read names off syntax-tree expressions: what a compared value is called, a callee, a method's receiver."""

from __future__ import annotations

import ast

from ._tables import ENV_LIKE, STRUCTURAL_ATTRS, STRUCTURAL_CALLS, WRAPPERS

_GETTERS = ("get", "pop", "setdefault")

__all__ = ["callee", "env_like", "is_structural", "name_of", "receiver_name", "str_arg"]


def name_of(expr: ast.AST) -> str:
    """A readable name for what an expression stands for: ``nan_ratio``, ``self.threads`` → ``threads``."""
    for _ in range(16):
        cls = expr.__class__
        if cls is ast.Name:
            return expr.id  # type: ignore[attr-defined]
        if cls is ast.Attribute:
            return expr.attr  # type: ignore[attr-defined]
        if cls is ast.Subscript:
            index = expr.slice  # type: ignore[attr-defined]
            if index.__class__ is ast.Constant and isinstance(index.value, str):
                return index.value
            expr = expr.value  # type: ignore[attr-defined]
        elif cls is ast.Call:
            func = callee(expr.func)  # type: ignore[attr-defined]
            args = expr.args  # type: ignore[attr-defined]
            if func in WRAPPERS and args:
                expr = args[0]
            elif (func == "min" or func == "max") and args:
                expr = next((a for a in args if a.__class__ not in (ast.Constant, ast.UnaryOp)), args[0])
            else:
                return func or "value"
        elif cls is ast.BinOp:
            expr = expr.left  # type: ignore[attr-defined]
        elif cls is ast.UnaryOp:
            expr = expr.operand  # type: ignore[attr-defined]
        elif cls is ast.BoolOp:
            expr = expr.values[0]  # type: ignore[attr-defined]
        else:
            break
    return "value"


def callee(func: ast.AST) -> str | None:
    cls = func.__class__
    if cls is ast.Name:
        return func.id  # type: ignore[attr-defined]
    if cls is ast.Attribute:
        return func.attr  # type: ignore[attr-defined]
    return None


def receiver_name(expr: ast.AST) -> str | None:
    """The name of the object a method is called on: ``self.cfg`` → ``cfg``, ``cfg.get("a", {})`` → ``cfg``."""
    for _ in range(16):
        cls = expr.__class__
        if cls is ast.Name:
            return expr.id  # type: ignore[attr-defined]
        if cls is ast.Attribute:
            return expr.attr  # type: ignore[attr-defined]
        if cls is ast.Subscript:
            expr = expr.value  # type: ignore[attr-defined]
        elif cls is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr in _GETTERS:  # type: ignore[attr-defined]
            expr = expr.func.value  # type: ignore[attr-defined]
        else:
            return None
    return None


def is_structural(expr: ast.AST) -> bool:
    """Whether a compared expression is a size or version (len(x), x.ndim, x.shape[0], sys.version_info)."""
    for _ in range(8):
        cls = expr.__class__
        if cls is ast.Call:
            return callee(expr.func) in STRUCTURAL_CALLS  # type: ignore[attr-defined, operator]
        if cls is ast.Attribute:
            return expr.attr in STRUCTURAL_ATTRS  # type: ignore[attr-defined]
        if cls is ast.Subscript:
            expr = expr.value  # type: ignore[attr-defined]
        else:
            return False
    return False


def env_like(name: str) -> bool:
    """Whether a variable name holds an environment: ``env``, ``environ``, ``child_env``..."""
    lowered = name.lower()
    return lowered in ENV_LIKE or lowered.endswith("_env")


def str_arg(node: ast.AST | None) -> str | None:
    if node is not None and node.__class__ is ast.Constant and node.value.__class__ is str:
        return node.value
    return None
