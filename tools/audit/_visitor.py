"""The one `ast.NodeVisitor` pass over a module's tree that collects the raw findings of every kind.

The traversal is tuned for speed: child fields are looked up once per node type, and operator,
context, name and constant nodes are never visited.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from ._astnames import callee, env_like, is_structural, name_of, receiver_name, str_arg
from ._keys import snake, suggest
from ._literal import NOT
from ._rules import Rules
from ._tables import (
    CLIP_NAMES,
    CPU_COUNT,
    ENV_NAME,
    HI_KW,
    LO_KW,
    MODULE_LIKE,
    PROCESS_ATTRS,
    PROCESS_SETTERS,
    REGULARISERS,
    SEEDED_MODULES,
    UPPER,
)

__all__ = ["DISPATCH", "Raw", "Visitor"]

_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_SKIPPED_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "annotation", "returns", "type_params"})
_LEAVES = (ast.Name, ast.Constant, ast.alias, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal)
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f for f in cls._fields if f not in _SKIPPED_FIELDS)
    for cls in vars(ast).values()
    if isinstance(cls, type) and issubclass(cls, ast.AST)
}
for _leaf in _LEAVES:
    _FIELDS[_leaf] = ()


_HINTED = (ast.Call, ast.BoolOp)
_TOLERANCE_OPS = (ast.Add, ast.Sub)  # not Mult: `budget_h * 3600` converts a unit


def _dotted(expr: ast.AST) -> str:
    """``torch.backends.cudnn.benchmark`` for an attribute chain on a name, else ``""``."""
    parts = []
    while expr.__class__ is ast.Attribute:
        parts.append(expr.attr)
        expr = expr.value
    if expr.__class__ is not ast.Name:
        return ""
    parts.append(expr.id)
    return ".".join(reversed(parts))


def _none_test(test: ast.AST) -> ast.AST | None:
    """The subject of ``x is None`` (a name or attribute), else ``None``."""
    if test.__class__ is ast.Compare and len(test.ops) == 1 and test.ops[0].__class__ is ast.Is:
        right = test.comparators[0]
        if right.__class__ is ast.Constant and right.value is None:
            left = test.left
            if left.__class__ in (ast.Name, ast.Attribute):
                return left
    return None


def _same(a: ast.AST, b: ast.AST) -> bool:
    """Whether two names or attribute chains are the same (``limit``, ``self.limit``)."""
    dotted = _dotted(a)
    return bool(dotted) and dotted == _dotted(b)


Raw = tuple[int, int, str, str, Any, str, str]  # line, byte column, kind, key, value, scope, suggested key


class Visitor(ast.NodeVisitor):
    """One pass over a module's tree, collecting raw findings."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.kinds = rules.kinds
        self.found: list[Raw] = []
        self.scope: list[str] = []
        self.depth = 0
        self.hints: dict[int, str] = {}
        self.env_dicts: set[int] = set()
        self.reported: set[int] = set()  # value nodes already in a finding: their parts are not reported again
        self.fallbacks: set[int] = set()  # assignments that are the body of `if x is None:`
        self.constants: dict[str, Any] = {}  # module-level names bound to a literal
        self.bodies: list[bool] = []  # per open scope: True for a class body, False for a function body
        self.scoped: set[int] = set()  # calls that open a `with` block: their keywords are scoped switches
        self.os_names = {"os"}
        self.environ_names: set[str] = set()
        self.getenv_names: set[str] = set()
        self.putenv_names: set[str] = set()

    # -- traversal -------------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        method = DISPATCH.get(node.__class__)
        if method is None:
            self.generic_visit(node)
        else:
            method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        visit = self.visit
        for name in _FIELDS[node.__class__]:
            value = getattr(node, name)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, ast.AST) and _FIELDS[item.__class__]:
                        visit(item)
            elif isinstance(value, ast.AST) and _FIELDS[value.__class__]:
                visit(value)

    def add(self, kind: str, key: str, value: Any, node: ast.AST, *, suffix: str = "", qualifier: str = "") -> None:
        self.reported.add(id(node))
        if kind not in self.kinds or self.rules.is_noise(kind, key, value):
            return
        self.found.append(
            (
                node.lineno,  # type: ignore[attr-defined]
                node.col_offset,  # type: ignore[attr-defined]
                kind,
                key,
                value,
                ".".join(self.scope),
                suggest(kind, key, self.rules.prefix, qualifier=qualifier, suffix=suffix),
            )
        )

    # -- scopes and imports ----------------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        args = node.args
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None and _FIELDS[default.__class__]:
                self.visit(default)
        self.scope.append(node.name)
        self.bodies.append(False)
        self.depth += 1
        if "signature_default" in self.kinds and not any(callee(d) == "overload" for d in node.decorator_list):
            self._signature(args)
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1
        self.bodies.pop()
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
            self.visit(expr)
        self.scope.append(node.name)
        self.bodies.append(True)
        self.depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1
        self.bodies.pop()
        self.scope.pop()

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        """``with np.errstate(over="ignore"):`` sets a switch for one block, not a setting of the run."""
        for item in node.items:
            if item.context_expr.__class__ is ast.Call:
                self.scoped.add(id(item.context_expr))
        self.generic_visit(node)

    @property
    def in_class_body(self) -> bool:
        """Whether the innermost scope is a class body (a declaration of data, not a setting)."""
        return bool(self.bodies) and self.bodies[-1]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "os":
                self.os_names.add(alias.asname or "os")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module != "os":
            return
        for alias in node.names:
            target = {"environ": self.environ_names, "getenv": self.getenv_names, "putenv": self.putenv_names}.get(
                alias.name
            )
            if target is not None:
                target.add(alias.asname or alias.name)

    # -- statements ------------------------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        for target in node.targets:
            cls = target.__class__
            if cls is ast.Name:
                if self.depth == 0:
                    self._constant(target, value)  # type: ignore[arg-type]
                elif id(node) not in self.fallbacks:
                    self._local(target.id, value)  # type: ignore[attr-defined]
                if value.__class__ is ast.Dict and env_like(target.id):  # type: ignore[attr-defined]
                    self._env_dict(value)
                if value.__class__ in _HINTED:
                    self.hints[id(value)] = target.id  # type: ignore[attr-defined]
            elif cls is ast.Subscript:
                self._item(target, value)  # type: ignore[arg-type]
                self.visit(target)
            elif cls is ast.Tuple and self.depth == 0 and value.__class__ is ast.Tuple:
                if len(target.elts) == len(value.elts):  # type: ignore[attr-defined]
                    for t, v in zip(target.elts, value.elts, strict=False):  # type: ignore[attr-defined]
                        if t.__class__ is ast.Name:
                            self._constant(t, v)
            elif cls is ast.Attribute:
                if value.__class__ in _HINTED:
                    self.hints[id(value)] = target.attr  # type: ignore[attr-defined]
                self._attribute(target, value, fallback=id(node) in self.fallbacks)  # type: ignore[arg-type]
                self.visit(target)
        if _FIELDS[value.__class__]:
            self.visit(value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        value = node.value
        if value is None:
            return
        target = node.target
        if target.__class__ is ast.Name:
            if self.depth == 0:
                self._constant(target, value)
            else:
                self._local(target.id, value)
            if value.__class__ in _HINTED:
                self.hints[id(value)] = target.id
        if _FIELDS[value.__class__]:
            self.visit(value)

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is None:
            return
        if value.__class__ is ast.Call and self.scope:
            self.hints[id(value)] = self.scope[-1]
        if _FIELDS[value.__class__]:
            self.visit(value)

    # -- expressions -----------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        cls = func.__class__
        name: str | None = None
        if cls is ast.Attribute:
            name = func.attr  # type: ignore[attr-defined]
            receiver = func.value  # type: ignore[attr-defined]
            if name == "get":
                if self._is_environ(receiver):
                    self._env_read(node)
                else:
                    self._get_default(node, receiver)
            elif name == "pop":
                if not self._is_environ(receiver):
                    self._get_default(node, receiver)
            elif name == "setdefault":
                if self._is_environ(receiver):
                    self._env_pair(node)
                else:
                    self._setdefault(node)
            elif name == "getenv" and self._is_os(receiver):
                self._env_read(node)
            elif name == "putenv" and self._is_os(receiver):
                self._env_pair(node)
            elif name == "update" and self._is_environ(receiver):
                self._env_update(node)
            elif name == "add_argument":
                self._argparse(node)
            elif name in PROCESS_SETTERS or (name == "seed" and _dotted(receiver) in SEEDED_MODULES):
                self._process_call(node, name)
                self.generic_visit(node)
                return
            elif name in CLIP_NAMES:
                module_form = receiver.__class__ is ast.Name and receiver.id in MODULE_LIKE
                self._clip(node, None if module_form else receiver)
        elif cls is ast.Name:
            name = func.id  # type: ignore[attr-defined]
            if name == "min" or name == "max":
                self._minmax(node, name)
            elif name in self.getenv_names:
                self._env_read(node)
            elif name in self.putenv_names:
                self._env_pair(node)
            elif name in CLIP_NAMES:
                self._clip(node, None)
            elif name == "getattr" and len(node.args) == 3:
                self._get_default(node, node.args[0], node.args[1:])
            elif name in PROCESS_SETTERS:
                self._process_call(node, name)
                self.generic_visit(node)
                return
        is_ctor = name is not None and self.rules.is_constructor(name)
        if node.args and name is not None and (is_ctor or name in REGULARISERS):
            self._positional(node, name)
        keywords = node.keywords
        if keywords:
            ctor = is_ctor and "constructor_kwarg" in self.kinds
            for kw in keywords:
                value = kw.value
                vcls = value.__class__
                if kw.arg is not None and (
                    ctor or (not is_ctor and id(node) not in self.scoped and self.rules.is_setting(kw.arg))
                ):
                    literal = self.rules.literal(value)
                    if literal is not NOT:
                        if ctor:
                            self.add("constructor_kwarg", kw.arg, literal, value, qualifier=name)  # type: ignore[arg-type]
                        else:
                            self.add("call_kwarg", kw.arg, literal, value)
                if vcls is ast.Call and kw.arg is not None:
                    self.hints[id(value)] = kw.arg
                elif vcls is ast.Dict and kw.arg == "env":
                    self._env_dict(value)  # type: ignore[arg-type]
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if "threshold" in self.kinds:
            left = node.left
            structural = "structural" in self.rules.noise
            for op, right in zip(node.ops, node.comparators, strict=False):
                if op.__class__ in _ORDER:
                    lv = self.rules.literal(left)
                    rv = self.rules.literal(right)
                    left_num = lv.__class__ in (int, float)
                    right_num = rv.__class__ in (int, float)
                    if left_num != right_num and lv is not NOT and rv is not NOT:
                        pass  # a number against a non-numeric literal: not a threshold
                    elif left_num and rv is NOT and not (structural and is_structural(right)):
                        self.add("threshold", name_of(right), lv, left, suffix="threshold")
                    elif right_num and lv is NOT and not (structural and is_structural(left)):
                        self.add("threshold", name_of(left), rv, right, suffix="threshold")
                    elif lv is NOT and rv is NOT:
                        self._tolerance(left, right, structural)
                left = right
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        values = node.values
        if node.op.__class__ is ast.Or and len(values) >= 2:
            fallback = values[-1]
            literal = self.rules.literal(fallback)
            if literal is not NOT and not any(self._or_default(e, fallback, literal) for e in values[:-1]):
                self._or_fallback(node, fallback, literal)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=False):
            if key is None and self._is_environ(value):
                self._env_dict(node)
            elif value.__class__ is ast.Call:
                text = str_arg(key)
                if text:
                    self.hints[id(value)] = text
        if (
            "config_dict" in self.kinds
            and not self.in_class_body
            and id(node) not in self.reported
            and id(node) not in self.env_dicts
            and not _import_table(node)
        ):
            for key, value in zip(node.keys, node.values, strict=False):
                text = str_arg(key)
                if text is not None and value.__class__ is not ast.Dict and self.rules.is_setting(text):
                    literal = self.rules.literal(value)
                    if literal is not NOT and literal != text:  # {"max_bin": "max_bin"}: a table of names
                        self.add("config_dict", text, literal, value)
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        """``if limit is None: limit = 500``: the assignment is a fallback default."""
        subject = _none_test(node.test)
        if subject is not None:
            for stmt in node.body:
                if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and _same(stmt.targets[0], subject):
                    literal = self.rules.literal(stmt.value)
                    if literal is not NOT:
                        self.fallbacks.add(id(stmt))
                        self.add("fallback", name_of(subject), literal, stmt.value)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        """``limit = 500 if limit is None else limit``."""
        subject = _none_test(node.test)
        if subject is not None and _same(node.orelse, subject):
            literal = self.rules.literal(node.body)
            if literal is not NOT:
                self.add("fallback", name_of(subject), literal, node.body)
        self.generic_visit(node)

    # -- kinds -----------------------------------------------------------------------------------

    def _constant(self, target: ast.Name, value: ast.AST) -> None:
        name = target.id
        if not UPPER.match(name) or name.startswith("__"):
            return
        literal = self.rules.literal(value)
        if literal is not NOT:
            self.constants[name] = literal
            self.add("constant", name, literal, target)
            self.reported.add(id(value))

    def _signature(self, args: ast.arguments) -> None:
        positional = [*args.posonlyargs, *args.args]
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=False))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=False) if d is not None]
        for arg, default in pairs:
            literal = self.rules.literal(default)
            if literal is not NOT:
                self.add("signature_default", arg.arg, literal, default)

    def _is_os(self, node: ast.AST) -> bool:
        return node.__class__ is ast.Name and node.id in self.os_names

    def _is_environ(self, node: ast.AST) -> bool:
        cls = node.__class__
        if cls is ast.Attribute:
            return node.attr == "environ" and self._is_os(node.value)  # type: ignore[attr-defined]
        return cls is ast.Name and node.id in self.environ_names  # type: ignore[attr-defined]

    def _default_arg(self, node: ast.Call) -> ast.AST | None:
        if len(node.args) >= 2:
            return node.args[1]
        for kw in node.keywords:
            if kw.arg == "default":
                return kw.value
        return None

    def _env_read(self, node: ast.Call) -> None:
        key = str_arg(node.args[0]) if node.args else None
        default = self._default_arg(node)
        if key is None or default is None:
            return
        literal = self.rules.literal(default)
        if literal is not NOT:
            self.add("env_default", key, literal, default)

    def _env_value(self, node: ast.AST) -> Any:
        """The literal an env write gives: a literal, a module constant, or ``str()`` of either."""
        if node.__class__ is ast.Call and callee(node.func) == "str" and len(node.args) == 1:
            inner = self._env_value(node.args[0])
            return NOT if inner is NOT else str(inner)
        if node.__class__ is ast.Name:
            return self.constants.get(node.id, NOT)
        return self.rules.literal(node)

    def _env_pair(self, node: ast.Call) -> None:
        if len(node.args) == 2:
            key = str_arg(node.args[0])
            literal = self._env_value(node.args[1])
            if key is not None and literal is not NOT:
                self.add("env_write", key, literal, node.args[1])

    def _env_update(self, node: ast.Call) -> None:
        for arg in node.args:
            if arg.__class__ is ast.Dict:
                self._env_dict(arg)
        for kw in node.keywords:
            if kw.arg is not None:
                literal = self.rules.literal(kw.value)
                if literal is not NOT:
                    self.add("env_write", kw.arg, literal, kw.value)

    def _env_dict(self, node: ast.Dict) -> None:
        if id(node) in self.env_dicts:
            return
        self.env_dicts.add(id(node))
        for key, value in zip(node.keys, node.values, strict=False):
            text = str_arg(key)
            if text is not None and ENV_NAME.match(text):
                literal = self.rules.literal(value)
                if literal is not NOT:
                    self.add("env_write", text, literal, value)

    def _item(self, target: ast.Subscript, value: ast.AST) -> None:
        """``os.environ["K"] = v`` and ``env["K"] = v``; ``rcParams["k"] = v``; ``opts["timeout_s"] = 900``."""
        key = str_arg(target.slice)
        if key is None:
            return
        holder = target.value
        name = callee(holder)
        if self._is_environ(holder) or (name is not None and ENV_NAME.match(key) and env_like(name)):
            literal = self._env_value(value)
            if literal is not NOT:
                self.add("env_write", key, literal, value)
            return
        literal = self.rules.literal(value)
        if literal is NOT:
            return
        if name == "rcParams":
            self.add("process_setting", key, literal, value)
        elif self.rules.is_setting(key):
            self.add("config_dict", key, literal, value)

    def _attribute(self, target: ast.Attribute, value: ast.AST, *, fallback: bool) -> None:
        """``torch.backends.cudnn.benchmark = True`` (process-wide); ``self.patience = 6`` in a method."""
        dotted = _dotted(target)
        if dotted.startswith(PROCESS_ATTRS):
            literal = self.rules.literal(value)
            if literal is not NOT:
                self.add("process_setting", target.attr, literal, value)
        elif not fallback and self.depth and target.value.__class__ is ast.Name and target.value.id == "self":
            self._local(target.attr, value)

    def _local(self, name: str, value: ast.AST) -> None:
        """A literal bound to a setting-named name inside a function or class."""
        if "local" in self.kinds and not self.in_class_body and self.rules.is_setting(name):
            literal = self.rules.literal(value)
            if literal is not NOT:
                self.add("local", name, literal, value)

    def _positional(self, node: ast.Call, name: str) -> None:
        """Literal numbers given by position to a layer or regulariser: ``nn.Dropout(0.3)``, ``l2(1e-4)``."""
        if "positional_arg" not in self.kinds:
            return
        args = node.args
        for i, arg in enumerate(args):
            literal = self.rules.literal(arg)
            if literal.__class__ in (int, float):
                key = snake(name) if len(args) == 1 else f"{snake(name)}_{i + 1}"
                self.add("positional_arg", key, literal, arg)

    def _process_call(self, node: ast.Call, name: str) -> None:
        """``torch.set_num_threads(4)``, ``np.set_printoptions(precision=4)``, ``pd.set_option("k", v)``."""
        args = list(node.args)
        key = name
        if len(args) >= 2 and str_arg(args[0]) is not None:
            key = str_arg(args[0])  # type: ignore[assignment]
            args = args[1:]
        for arg in args:
            literal = self.rules.literal(arg)
            if literal is not NOT:
                self.add("process_setting", key, literal, arg)
        for kw in node.keywords:
            if kw.arg is not None:
                literal = self.rules.literal(kw.value)
                if literal is not NOT:
                    self.add("process_setting", kw.arg, literal, kw.value)

    def _tolerance(self, left: ast.AST, right: ast.AST, structural: bool) -> None:
        """``loss > prev - 1e-4``: the literal inside the arithmetic of one side is a tolerance."""
        for side, other in ((right, left), (left, right)):
            if side.__class__ is ast.BinOp and side.op.__class__ in _TOLERANCE_OPS:
                operands = (side.left, side.right)
                values = [self.rules.literal(o) for o in operands]
                numbers = [(o, v) for o, v in zip(operands, values, strict=False) if v.__class__ in (int, float)]
                if len(numbers) == 1 and not (structural and (is_structural(other) or is_structural(side))):
                    self.add("threshold", name_of(other), numbers[0][1], numbers[0][0], suffix="tolerance")
                return

    def _or_fallback(self, node: ast.BoolOp, fallback: ast.AST, literal: Any) -> None:
        """``workers = n or 8``: a fallback when the target or the operand names a setting."""
        target = self.hints.get(id(node))
        name = target if target and self.rules.is_setting(target) else name_of(node.values[0])
        if self.rules.is_setting(name):
            self.add("fallback", name, literal, fallback)

    def _get_default(self, node: ast.Call, receiver: ast.AST, args: list[ast.expr] | None = None) -> None:
        """``cfg.get("k", lit)``, ``kwargs.pop("k", lit)``, ``getattr(cfg, "k", lit)`` on a config-like receiver."""
        args = node.args if args is None else args
        if len(args) != 2 or node.keywords or not self.rules.is_config_like(receiver_name(receiver)):
            return
        key = str_arg(args[0])
        literal = self.rules.literal(args[1])
        if key is not None and literal is not NOT:
            self.add("get_default", key, literal, args[1])

    def _setdefault(self, node: ast.Call) -> None:
        if len(node.args) != 2:
            return
        key = str_arg(node.args[0])
        literal = self.rules.literal(node.args[1])
        if key is not None and literal is not NOT:
            self.add("setdefault", key, literal, node.args[1])

    def _argparse(self, node: ast.Call) -> None:
        default = dest = None
        for kw in node.keywords:
            if kw.arg == "default":
                default = kw.value
            elif kw.arg == "dest":
                dest = str_arg(kw.value)
        if default is None:
            return
        literal = self.rules.literal(default)
        if literal is NOT:
            return
        flags = [s for s in map(str_arg, node.args) if s]
        longs = [f for f in flags if f.startswith("--")]
        key = dest or (longs[0] if longs else flags[0] if flags else "")
        key = key.lstrip("-").replace("-", "_")
        if key:
            self.add("argparse_default", key, literal, default)

    def _or_default(self, expr: ast.AST, fallback: ast.AST, literal: Any) -> bool:
        """``os.getenv("K") or 4``, ``cfg.get("k") or 4``, ``os.cpu_count() or 4``: report the fallback."""
        if expr.__class__ is not ast.Call:
            return False
        func = expr.func
        args = expr.args
        name = callee(func)
        if name in CPU_COUNT and not args:
            self.add("clamp", self.hints.get(id(expr), name), literal, fallback, suffix="fallback")
            return True
        if len(args) != 1 or expr.keywords:
            return False
        key = str_arg(args[0])
        if key is None:
            return False
        receiver = func.value if func.__class__ is ast.Attribute else None
        is_env = (name == "getenv" and receiver is not None and self._is_os(receiver)) or (
            name == "get" and receiver is not None and self._is_environ(receiver)
        ) or (func.__class__ is ast.Name and name in self.getenv_names)
        if is_env:
            self.add("env_default", key, literal, fallback)
            return True
        if name == "get" and receiver is not None and self.rules.is_config_like(receiver_name(receiver)):
            self.add("get_default", key, literal, fallback)
            return True
        return False

    def _minmax(self, node: ast.Call, name: str) -> None:
        args = node.args
        if "clamp" not in self.kinds or node.keywords or len(args) < 2:
            return
        values = [self.rules.literal(a) if a.__class__ is not ast.Starred else NOT for a in args]
        numbers = [i for i, v in enumerate(values) if v.__class__ in (int, float)]
        others = [a for a, v in zip(args, values, strict=False) if v is NOT]
        if not numbers or not others or any(a.__class__ is ast.Starred for a in args):
            return
        target = self.hints.get(id(node)) or name_of(others[0])
        for other in others:
            if other.__class__ is ast.Call and callee(other.func) in ("min", "max"):
                self.hints[id(other)] = target
        bound = "min" if name == "max" else "max"
        for i in numbers:
            self.add("clamp", target, values[i], args[i], suffix=bound)

    def _clip(self, node: ast.Call, receiver: ast.AST | None) -> None:
        if "clamp" not in self.kinds:
            return
        args = list(node.args)
        subject = receiver
        if subject is None:
            if not args:
                return
            subject = args.pop(0)
        bounds: list[tuple[ast.AST, str]] = [(a, s) for a, s in zip(args, ("min", "max"), strict=False)]
        for kw in node.keywords:
            if kw.arg in LO_KW:
                bounds.append((kw.value, "min"))
            elif kw.arg in HI_KW:
                bounds.append((kw.value, "max"))
        target = self.hints.get(id(node)) or name_of(subject)
        for expr, bound in bounds:
            literal = self.rules.literal(expr)
            if literal.__class__ in (int, float):
                self.add("clamp", target, literal, expr, suffix=bound)


DISPATCH: dict[type, Callable[[Visitor, Any], None]] = {
    ast.If: Visitor.visit_If,
    ast.With: Visitor.visit_With,
    ast.AsyncWith: Visitor.visit_With,
    ast.IfExp: Visitor.visit_IfExp,
    ast.Call: Visitor.visit_Call,
    ast.Compare: Visitor.visit_Compare,
    ast.Assign: Visitor.visit_Assign,
    ast.AnnAssign: Visitor.visit_AnnAssign,
    ast.FunctionDef: Visitor.visit_FunctionDef,
    ast.AsyncFunctionDef: Visitor.visit_FunctionDef,
    ast.ClassDef: Visitor.visit_ClassDef,
    ast.BoolOp: Visitor.visit_BoolOp,
    ast.Dict: Visitor.visit_Dict,
    ast.Return: Visitor.visit_Return,
    ast.Import: Visitor.visit_Import,
    ast.ImportFrom: Visitor.visit_ImportFrom,
}
"""Node types with a handler; every other node is only walked through (a class table: no cycle per visitor)."""


_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")  # tkplan: ignore[constant]  a dotted name


def _import_table(node: ast.Dict) -> bool:
    """``{"Plan": "pkg.plan", "probe": "pkg.probe", …}``: a table of names to modules (lazy exports, registries),
    every value a dotted name, so its entries are not settings even where a key looks like one."""
    values = node.values
    return len(values) >= _TABLE_MIN and all(
        v.__class__ is ast.Constant and isinstance(v.value, str) and _DOTTED.fullmatch(v.value) for v in values)


_TABLE_MIN = 3  # tkplan: ignore[constant]  fewer entries are as likely a setting naming a class or a module
