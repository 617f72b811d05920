"""Fold a literal expression of the syntax tree into its value: numbers, strings, small containers, constant arithmetic.

``literal_value(node, budget)`` returns the value, or `NOT` when the expression is not a literal (a name,
a call, bytes, a container larger than the item budget, arithmetic too large to fold safely).
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["NOT", "literal_value"]

NOT = object()  # "not a literal"
_MAX_EXPONENT = 128  # constant folding: no 10**10**10 in a scan
_MAX_POWER_BASE = 2**16


def literal_value(node: ast.AST, budget: list[int]) -> Any:
    cls = node.__class__
    if cls is ast.Constant:
        value = node.value  # type: ignore[attr-defined]
        if value is Ellipsis or value.__class__ in (bytes, complex):
            return NOT
        return value
    if cls is ast.UnaryOp:
        operand = literal_value(node.operand, budget)  # type: ignore[attr-defined]
        if operand.__class__ in (int, float):
            op = node.op.__class__  # type: ignore[attr-defined]
            if op is ast.USub:
                return -operand
            if op is ast.UAdd:
                return operand
        return NOT
    if cls is ast.Tuple or cls is ast.List or cls is ast.Set:
        elts = node.elts  # type: ignore[attr-defined]
        budget[0] -= len(elts)
        if budget[0] < 0:
            return NOT
        items = []
        for elt in elts:
            item = literal_value(elt, budget)
            if item is NOT:
                return NOT
            items.append(item)
        return tuple(items)
    if cls is ast.Dict:
        keys, values = node.keys, node.values  # type: ignore[attr-defined]
        budget[0] -= len(keys)
        if budget[0] < 0:
            return NOT
        result = {}
        for k, v in zip(keys, values, strict=False):
            if k is None:
                return NOT
            key = literal_value(k, budget)
            if key.__class__ not in (str, int):
                return NOT
            item = literal_value(v, budget)
            if item is NOT:
                return NOT
            result[key] = item
        return result
    if cls is ast.BinOp:
        return _fold(node, budget)  # type: ignore[arg-type]
    return NOT


def _fold(node: ast.BinOp, budget: list[int]) -> Any:
    left = literal_value(node.left, budget)
    right = literal_value(node.right, budget)
    if left.__class__ not in (int, float) or right.__class__ not in (int, float):
        return NOT
    op = node.op.__class__
    try:
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        if op is ast.Mult:
            return left * right
        if op is ast.Div:
            return left / right
        if op is ast.FloorDiv:
            return left // right
        if op is ast.Mod:
            return left % right
        if op is ast.Pow and abs(right) <= _MAX_EXPONENT and abs(left) <= _MAX_POWER_BASE:
            return left**right
    except (ArithmeticError, ValueError):
        pass
    return NOT
