"""Find the hardcoded configuration values of one Python file, in one `ast.NodeVisitor` pass.

What is reported, by kind (see `KINDS`): ``setdefault``, ``get_default``, ``env_default``, ``env_write``,
``signature_default``, ``constructor_kwarg``, ``constant``, ``argparse_default``, ``threshold`` and
``clamp``. Only literal values count (numbers, strings, booleans, None, and small tuples, lists, sets and
dicts of them, with constant arithmetic such as ``4 * 2**20`` folded); a value computed at run time is
not a hardcoded default. Noise filters (`NOISE_FILTERS`) drop the usual non-settings. A line that ends
with ``# tkplan: ignore[kind, ...]`` (or a bare ``# tkplan: ignore``) reports nothing of those kinds.

The traversal is tuned for speed: child fields are looked up once per node type, and operator,
context, name and constant nodes are never visited.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import io
import re
import sys
import tokenize
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from ._config import AuditSettings
from ._findings import ENV_KINDS, KINDS, Finding
from ._keys import module_prefix, suggest

__all__ = ["CONFIG_RECEIVERS", "CONSTRUCTORS", "FileScan", "Rules", "parse_ignores", "scan_python"]

CONSTRUCTORS = frozenset(  # tkplan: ignore[constant]
    {
        # scikit-learn estimators and transformers not caught by a suffix
        "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV", "Lars", "LassoLars",
        "BayesianRidge", "SVR", "SVC", "LinearSVR", "LinearSVC", "NuSVR", "KMeans", "MiniBatchKMeans",
        "DBSCAN", "PCA", "TruncatedSVD", "IsolationForest", "NearestNeighbors", "SelectKBest",
        "VarianceThreshold",
        # optimizers
        "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "NAdam", "RAdam",
        "LBFGS", "Ftrl", "Lion", "Adafactor",
        # schedulers and callbacks
        "ReduceLROnPlateau", "LearningRateScheduler", "CosineDecay", "ExponentialDecay",
        "PiecewiseConstantDecay", "CosineAnnealingWarmRestarts", "ChainedScheduler", "ModelCheckpoint",
        "TensorBoard", "CSVLogger", "early_stopping", "log_evaluation",
        # layers
        "Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "Conv1D", "Conv2D",
        "Dense", "Dropout", "AlphaDropout", "SpatialDropout1D", "LSTM", "GRU", "RNN", "SimpleRNN",
        "LSTMCell", "GRUCell", "Bidirectional", "Embedding", "BatchNorm1d", "BatchNorm2d", "GroupNorm",
        "MultiheadAttention", "TransformerEncoder", "TransformerDecoder", "MaxPool1d", "AvgPool1d",
        "AdaptiveAvgPool1d",
        # splits, searches and loaders
        "train_test_split", "KFold", "StratifiedKFold", "GroupKFold", "RepeatedKFold",
        "RepeatedStratifiedKFold", "PurgedKFold", "cross_val_score", "cross_validate", "GridSearchCV",
        "RandomizedSearchCV", "DataLoader",
    }
)
"""Callee names whose literal keyword arguments are ``constructor_kwarg`` findings (besides the suffixes)."""

_CONSTRUCTOR_SUFFIX = re.compile(
    r"(?:Regressor|Classifier|Regression|Ranker|Scaler|Imputer|Mixture|Transformer|Optimizer|Scheduler"
    r"|Callback|Stopping|Checkpoint|Split|KFold|Layer|Attention|Normalization|Norm|Pooling[123]D|[a-z]LR)$"
)

CONFIG_RECEIVERS = frozenset(  # tkplan: ignore[constant]
    {
        "cfg", "conf", "config", "configs", "configuration", "params", "param", "hparams", "hyperparams",
        "hp", "kwargs", "kw", "options", "opts", "settings", "args", "defaults", "overrides",
    }
)
"""Names (or ``_``-separated parts of names) of objects whose ``.get(key, literal)`` is a config default."""

_LOG_KEYS = frozenset({"verbose", "verbosity", "silent", "quiet", "level", "log_level", "loglevel", "logging_level"})
_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET"})
_LOG_ENV = re.compile(r"LOG_?LEVEL|VERBOS|LOGGING")
_STRUCTURAL_KWARGS = frozenset({"name", "dtype", "device", "batch_first", "return_sequences", "return_state"})
_STRUCTURAL_MODES = frozenset({"padding", "data_format"})  # structural when the value is a mode name ("same")
_STRUCTURAL_ATTRS = frozenset({"ndim", "shape", "version_info", "__version__", "maxsize"})
_STRUCTURAL_CALLS = frozenset({"len", "dim", "size", "ndimension"})
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_UPPER = re.compile(r"^_*[A-Z][A-Z0-9_]*$")
_ENV_LIKE = frozenset({"env", "environ", "environment", "env_vars", "envvars"})
_CLIP_NAMES = frozenset({"clip", "clamp", "clip_", "clamp_", "clip_by_value"})
_MODULE_LIKE = frozenset({"np", "numpy", "torch", "tf", "jnp", "cp", "F", "math"})
_WRAPPERS = frozenset({"int", "float", "round", "abs", "floor", "ceil"})
_CPU_COUNT = frozenset({"cpu_count", "process_cpu_count", "device_count"})
_LO_KW = frozenset({"min", "a_min", "lower", "lo", "clip_value_min"})
_HI_KW = frozenset({"max", "a_max", "upper", "hi", "clip_value_max"})
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_IGNORE = re.compile(r"#\s*tkplan:\s*ignore\b(?:\[([^\]]*)\])?")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NOT = object()  # "not a literal"
_MAX_EXPONENT = 128  # constant folding: no 10**10**10 in a scan
_MAX_POWER_BASE = 2**16
_DEEP_RECURSION_LIMIT = 20_000  # for the second try at a tree too deep for the default limit

_SKIPPED_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "annotation", "returns", "type_params"})
_LEAVES = (ast.Name, ast.Constant, ast.alias, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal)
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f for f in cls._fields if f not in _SKIPPED_FIELDS)
    for cls in vars(ast).values()
    if isinstance(cls, type) and issubclass(cls, ast.AST)
}
for _leaf in _LEAVES:
    _FIELDS[_leaf] = ()


@attrs.frozen
class FileScan:
    """The result of scanning one file: its findings, or why it was skipped, and any notes."""

    path: str
    findings: tuple[Finding, ...] = ()
    skipped: str = ""
    notes: tuple[str, ...] = ()


class Rules:
    """What one file's scan reports: the settings' kinds, filters and names, and the file's key prefix."""

    def __init__(self, settings: AuditSettings, path: str) -> None:
        self.kinds = settings.kinds
        self.noise = settings.noise
        self.max_items = settings.max_literal_items
        self.constructors = CONSTRUCTORS | settings.constructors
        self.receivers = CONFIG_RECEIVERS | {r.lower() for r in settings.config_receivers}
        self.prefix = module_prefix(path, settings.family_aliases)
        self._is_ctor: dict[str, bool] = {}

    def is_constructor(self, name: str) -> bool:
        known = self._is_ctor.get(name)
        if known is None:
            known = self._is_ctor[name] = name in self.constructors or bool(_CONSTRUCTOR_SUFFIX.search(name))
        return known

    def is_config_like(self, name: str | None) -> bool:
        if not name:
            return False
        lowered = name.lower()
        if lowered in self.receivers or lowered.endswith(("config", "cfg", "params")):
            return True
        return any(part in self.receivers for part in lowered.split("_"))

    def is_noise(self, kind: str, key: str, value: Any) -> bool:
        noise = self.noise
        if value is None:
            return "none" in noise
        cls = value.__class__
        if cls is int and -1 <= value <= 1 and "trivial_numbers" in noise:
            return True
        if cls is float and value in (0.0, 1.0, -1.0) and kind in ("clamp", "threshold") and "trivial_numbers" in noise:
            return True
        if (cls is str or cls is tuple or cls is dict) and not value and "empty" in noise:
            return True
        if cls is str and "\n" in value and "text" in noise:
            return True
        if cls is bool and kind in ("signature_default", "argparse_default") and "bool_defaults" in noise:
            return True
        if "logging" in noise and (
            key.lower() in _LOG_KEYS
            or (kind in ENV_KINDS and _LOG_ENV.search(key) is not None)
            or (cls is str and value.upper() in _LOG_LEVELS)
        ):
            return True
        if "private" in noise and key.startswith("_") and kind in ("constant", "signature_default"):
            return True
        return "structural" in noise and kind == "constructor_kwarg" and (
            key in _STRUCTURAL_KWARGS or (cls is str and key in _STRUCTURAL_MODES)
        )

    def literal(self, node: ast.AST) -> Any:
        """The value of a literal expression, or `_NOT`."""
        budget = [self.max_items]
        return _literal(node, budget)


def _literal(node: ast.AST, budget: list[int]) -> Any:
    cls = node.__class__
    if cls is ast.Constant:
        value = node.value  # type: ignore[attr-defined]
        if value is Ellipsis or value.__class__ in (bytes, complex):
            return _NOT
        return value
    if cls is ast.UnaryOp:
        operand = _literal(node.operand, budget)  # type: ignore[attr-defined]
        if operand.__class__ in (int, float):
            op = node.op.__class__  # type: ignore[attr-defined]
            if op is ast.USub:
                return -operand
            if op is ast.UAdd:
                return operand
        return _NOT
    if cls is ast.Tuple or cls is ast.List or cls is ast.Set:
        elts = node.elts  # type: ignore[attr-defined]
        budget[0] -= len(elts)
        if budget[0] < 0:
            return _NOT
        items = []
        for elt in elts:
            item = _literal(elt, budget)
            if item is _NOT:
                return _NOT
            items.append(item)
        return tuple(items)
    if cls is ast.Dict:
        keys, values = node.keys, node.values  # type: ignore[attr-defined]
        budget[0] -= len(keys)
        if budget[0] < 0:
            return _NOT
        result = {}
        for k, v in zip(keys, values):
            if k is None:
                return _NOT
            key = _literal(k, budget)
            if key.__class__ not in (str, int):
                return _NOT
            item = _literal(v, budget)
            if item is _NOT:
                return _NOT
            result[key] = item
        return result
    if cls is ast.BinOp:
        return _fold(node, budget)  # type: ignore[arg-type]
    return _NOT


def _fold(node: ast.BinOp, budget: list[int]) -> Any:
    left = _literal(node.left, budget)
    right = _literal(node.right, budget)
    if left.__class__ not in (int, float) or right.__class__ not in (int, float):
        return _NOT
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
    return _NOT


def _name_of(expr: ast.AST) -> str:
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
            func = _callee(expr.func)  # type: ignore[attr-defined]
            args = expr.args  # type: ignore[attr-defined]
            if func in _WRAPPERS and args:
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


def _callee(func: ast.AST) -> str | None:
    cls = func.__class__
    if cls is ast.Name:
        return func.id  # type: ignore[attr-defined]
    if cls is ast.Attribute:
        return func.attr  # type: ignore[attr-defined]
    return None


def _receiver(expr: ast.AST) -> str | None:
    """The name of the object a method is called on: ``self.cfg`` → ``cfg``, ``cfg.get("a", {})`` → ``cfg``."""
    for _ in range(16):
        cls = expr.__class__
        if cls is ast.Name:
            return expr.id  # type: ignore[attr-defined]
        if cls is ast.Attribute:
            return expr.attr  # type: ignore[attr-defined]
        if cls is ast.Subscript:
            expr = expr.value  # type: ignore[attr-defined]
        elif cls is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr in ("get", "pop", "setdefault"):  # type: ignore[attr-defined]
            expr = expr.func.value  # type: ignore[attr-defined]
        else:
            return None
    return None


def _is_structural(expr: ast.AST) -> bool:
    """Whether a compared expression is a size or version (len(x), x.ndim, x.shape[0], sys.version_info)."""
    for _ in range(8):
        cls = expr.__class__
        if cls is ast.Call:
            return _callee(expr.func) in _STRUCTURAL_CALLS  # type: ignore[attr-defined]
        if cls is ast.Attribute:
            return expr.attr in _STRUCTURAL_ATTRS  # type: ignore[attr-defined]
        if cls is ast.Subscript:
            expr = expr.value  # type: ignore[attr-defined]
        else:
            return False
    return False


def _env_like(name: str) -> bool:
    """Whether a variable name holds an environment: ``env``, ``environ``, ``child_env``..."""
    lowered = name.lower()
    return lowered in _ENV_LIKE or lowered.endswith("_env")


def _str_arg(node: ast.AST | None) -> str | None:
    if node is not None and node.__class__ is ast.Constant and node.value.__class__ is str:  # type: ignore[attr-defined]
        return node.value  # type: ignore[attr-defined]
    return None


_Raw = tuple[int, int, str, str, Any, str, str]  # line, byte column, kind, key, value, scope, suggested key


class _Visitor(ast.NodeVisitor):
    """One pass over a module's tree, collecting raw findings."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.kinds = rules.kinds
        self.found: list[_Raw] = []
        self.scope: list[str] = []
        self.depth = 0
        self.hints: dict[int, str] = {}
        self.env_dicts: set[int] = set()
        self.os_names = {"os"}
        self.environ_names: set[str] = set()
        self.getenv_names: set[str] = set()
        self.putenv_names: set[str] = set()

    # -- traversal -------------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        method = _DISPATCH.get(node.__class__)
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
        self.depth += 1
        if "signature_default" in self.kinds and not any(_callee(d) == "overload" for d in node.decorator_list):
            self._signature(args)
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
            self.visit(expr)
        self.scope.append(node.name)
        self.depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1
        self.scope.pop()

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
                    self._constant(target, value)
                if value.__class__ is ast.Dict and _env_like(target.id):  # type: ignore[attr-defined]
                    self._env_dict(value)  # type: ignore[arg-type]
                if value.__class__ is ast.Call:
                    self.hints[id(value)] = target.id  # type: ignore[attr-defined]
            elif cls is ast.Subscript:
                self._env_item(target, value)  # type: ignore[arg-type]
                self.visit(target)
            elif cls is ast.Tuple and self.depth == 0 and value.__class__ is ast.Tuple:
                if len(target.elts) == len(value.elts):  # type: ignore[attr-defined]
                    for t, v in zip(target.elts, value.elts):  # type: ignore[attr-defined]
                        if t.__class__ is ast.Name:
                            self._constant(t, v)
            elif cls is ast.Attribute:
                if value.__class__ is ast.Call:
                    self.hints[id(value)] = target.attr  # type: ignore[attr-defined]
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
                self._constant(target, value)  # type: ignore[arg-type]
            if value.__class__ is ast.Call:
                self.hints[id(value)] = target.id  # type: ignore[attr-defined]
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
            elif name in _CLIP_NAMES:
                module_form = receiver.__class__ is ast.Name and receiver.id in _MODULE_LIKE  # type: ignore[attr-defined]
                self._clip(node, None if module_form else receiver)
        elif cls is ast.Name:
            name = func.id  # type: ignore[attr-defined]
            if name == "min" or name == "max":
                self._minmax(node, name)
            elif name in self.getenv_names:
                self._env_read(node)
            elif name in self.putenv_names:
                self._env_pair(node)
            elif name in _CLIP_NAMES:
                self._clip(node, None)
            elif name == "getattr" and len(node.args) == 3:
                self._get_default(node, node.args[0], node.args[1:])
        keywords = node.keywords
        if keywords:
            ctor = name is not None and "constructor_kwarg" in self.kinds and self.rules.is_constructor(name)
            for kw in keywords:
                value = kw.value
                vcls = value.__class__
                if ctor and kw.arg is not None:
                    literal = self.rules.literal(value)
                    if literal is not _NOT:
                        self.add("constructor_kwarg", kw.arg, literal, value, qualifier=name)  # type: ignore[arg-type]
                if vcls is ast.Call and kw.arg is not None:
                    self.hints[id(value)] = kw.arg
                elif vcls is ast.Dict and kw.arg == "env":
                    self._env_dict(value)  # type: ignore[arg-type]
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if "threshold" in self.kinds:
            left = node.left
            structural = "structural" in self.rules.noise
            for op, right in zip(node.ops, node.comparators):
                if op.__class__ in _ORDER:
                    lv = self.rules.literal(left)
                    rv = self.rules.literal(right)
                    left_num = lv.__class__ in (int, float)
                    right_num = rv.__class__ in (int, float)
                    if left_num != right_num and lv is not _NOT and rv is not _NOT:
                        pass  # a number against a non-numeric literal: not a threshold
                    elif left_num and rv is _NOT and not (structural and _is_structural(right)):
                        self.add("threshold", _name_of(right), lv, left, suffix="threshold")
                    elif right_num and lv is _NOT and not (structural and _is_structural(left)):
                        self.add("threshold", _name_of(left), rv, right, suffix="threshold")
                left = right
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        values = node.values
        if node.op.__class__ is ast.Or and len(values) >= 2:
            fallback = values[-1]
            literal = self.rules.literal(fallback)
            if literal is not _NOT:
                for expr in values[:-1]:
                    if self._or_default(expr, fallback, literal):
                        break
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values):
            if key is None and self._is_environ(value):
                self._env_dict(node)
            elif value.__class__ is ast.Call:
                text = _str_arg(key)
                if text:
                    self.hints[id(value)] = text
        self.generic_visit(node)

    # -- kinds -----------------------------------------------------------------------------------

    def _constant(self, target: ast.Name, value: ast.AST) -> None:
        name = target.id
        if "constant" not in self.kinds or not _UPPER.match(name) or name.startswith("__"):
            return
        literal = self.rules.literal(value)
        if literal is not _NOT:
            self.add("constant", name, literal, target)

    def _signature(self, args: ast.arguments) -> None:
        positional = [*args.posonlyargs, *args.args]
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            literal = self.rules.literal(default)
            if literal is not _NOT:
                self.add("signature_default", arg.arg, literal, default)

    def _is_os(self, node: ast.AST) -> bool:
        return node.__class__ is ast.Name and node.id in self.os_names  # type: ignore[attr-defined]

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
        key = _str_arg(node.args[0]) if node.args else None
        default = self._default_arg(node)
        if key is None or default is None:
            return
        literal = self.rules.literal(default)
        if literal is not _NOT:
            self.add("env_default", key, literal, default)

    def _env_pair(self, node: ast.Call) -> None:
        if len(node.args) == 2:
            key = _str_arg(node.args[0])
            literal = self.rules.literal(node.args[1])
            if key is not None and literal is not _NOT:
                self.add("env_write", key, literal, node.args[1])

    def _env_update(self, node: ast.Call) -> None:
        for arg in node.args:
            if arg.__class__ is ast.Dict:
                self._env_dict(arg)  # type: ignore[arg-type]
        for kw in node.keywords:
            if kw.arg is not None:
                literal = self.rules.literal(kw.value)
                if literal is not _NOT:
                    self.add("env_write", kw.arg, literal, kw.value)

    def _env_dict(self, node: ast.Dict) -> None:
        if id(node) in self.env_dicts:
            return
        self.env_dicts.add(id(node))
        for key, value in zip(node.keys, node.values):
            text = _str_arg(key)
            if text is not None and _ENV_NAME.match(text):
                literal = self.rules.literal(value)
                if literal is not _NOT:
                    self.add("env_write", text, literal, value)

    def _env_item(self, target: ast.Subscript, value: ast.AST) -> None:
        key = _str_arg(target.slice)
        if key is None:
            return
        holder = target.value
        if not self._is_environ(holder):
            name = _callee(holder)
            if name is None or not _ENV_NAME.match(key):
                return
            if not _env_like(name):
                return
        literal = self.rules.literal(value)
        if literal is not _NOT:
            self.add("env_write", key, literal, value)

    def _get_default(self, node: ast.Call, receiver: ast.AST, args: list[ast.expr] | None = None) -> None:
        """``cfg.get("k", lit)``, ``kwargs.pop("k", lit)``, ``getattr(cfg, "k", lit)`` on a config-like receiver."""
        args = node.args if args is None else args
        if len(args) != 2 or node.keywords or not self.rules.is_config_like(_receiver(receiver)):
            return
        key = _str_arg(args[0])
        literal = self.rules.literal(args[1])
        if key is not None and literal is not _NOT:
            self.add("get_default", key, literal, args[1])

    def _setdefault(self, node: ast.Call) -> None:
        if len(node.args) != 2:
            return
        key = _str_arg(node.args[0])
        literal = self.rules.literal(node.args[1])
        if key is not None and literal is not _NOT:
            self.add("setdefault", key, literal, node.args[1])

    def _argparse(self, node: ast.Call) -> None:
        default = dest = None
        for kw in node.keywords:
            if kw.arg == "default":
                default = kw.value
            elif kw.arg == "dest":
                dest = _str_arg(kw.value)
        if default is None:
            return
        literal = self.rules.literal(default)
        if literal is _NOT:
            return
        flags = [s for s in map(_str_arg, node.args) if s]
        longs = [f for f in flags if f.startswith("--")]
        key = dest or (longs[0] if longs else flags[0] if flags else "")
        key = key.lstrip("-").replace("-", "_")
        if key:
            self.add("argparse_default", key, literal, default)

    def _or_default(self, expr: ast.AST, fallback: ast.AST, literal: Any) -> bool:
        """``os.getenv("K") or 4``, ``cfg.get("k") or 4``, ``os.cpu_count() or 4``: report the fallback."""
        if expr.__class__ is not ast.Call:
            return False
        func = expr.func  # type: ignore[attr-defined]
        args = expr.args  # type: ignore[attr-defined]
        name = _callee(func)
        if name in _CPU_COUNT and not args:
            self.add("clamp", self.hints.get(id(expr), name), literal, fallback, suffix="fallback")
            return True
        if len(args) != 1 or expr.keywords:  # type: ignore[attr-defined]
            return False
        key = _str_arg(args[0])
        if key is None:
            return False
        receiver = func.value if func.__class__ is ast.Attribute else None
        is_env = (name == "getenv" and receiver is not None and self._is_os(receiver)) or (
            name == "get" and receiver is not None and self._is_environ(receiver)
        ) or (func.__class__ is ast.Name and name in self.getenv_names)
        if is_env:
            self.add("env_default", key, literal, fallback)
            return True
        if name == "get" and receiver is not None and self.rules.is_config_like(_receiver(receiver)):
            self.add("get_default", key, literal, fallback)
            return True
        return False

    def _minmax(self, node: ast.Call, name: str) -> None:
        args = node.args
        if "clamp" not in self.kinds or node.keywords or len(args) < 2:
            return
        values = [self.rules.literal(a) if a.__class__ is not ast.Starred else _NOT for a in args]
        numbers = [i for i, v in enumerate(values) if v.__class__ in (int, float)]
        others = [a for a, v in zip(args, values) if v is _NOT]
        if not numbers or not others or any(a.__class__ is ast.Starred for a in args):
            return
        target = self.hints.get(id(node)) or _name_of(others[0])
        for other in others:
            if other.__class__ is ast.Call and _callee(other.func) in ("min", "max"):  # type: ignore[attr-defined]
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
        bounds: list[tuple[ast.AST, str]] = [(a, s) for a, s in zip(args, ("min", "max"))]
        for kw in node.keywords:
            if kw.arg in _LO_KW:
                bounds.append((kw.value, "min"))
            elif kw.arg in _HI_KW:
                bounds.append((kw.value, "max"))
        target = self.hints.get(id(node)) or _name_of(subject)
        for expr, bound in bounds:
            literal = self.rules.literal(expr)
            if literal.__class__ in (int, float):
                self.add("clamp", target, literal, expr, suffix=bound)


_DISPATCH: dict[type, Callable[[_Visitor, Any], None]] = {
    ast.Call: _Visitor.visit_Call,
    ast.Compare: _Visitor.visit_Compare,
    ast.Assign: _Visitor.visit_Assign,
    ast.AnnAssign: _Visitor.visit_AnnAssign,
    ast.FunctionDef: _Visitor.visit_FunctionDef,
    ast.AsyncFunctionDef: _Visitor.visit_FunctionDef,
    ast.ClassDef: _Visitor.visit_ClassDef,
    ast.BoolOp: _Visitor.visit_BoolOp,
    ast.Dict: _Visitor.visit_Dict,
    ast.Return: _Visitor.visit_Return,
    ast.Import: _Visitor.visit_Import,
    ast.ImportFrom: _Visitor.visit_ImportFrom,
}
"""Node types with a handler; every other node is only walked through (a class table: no cycle per visitor)."""


def parse_ignores(lines: Iterable[tuple[int, str]]) -> tuple[dict[int, frozenset[str] | None], list[str]]:
    """Read ``# tkplan: ignore[kind, ...]`` comments from ``(line number, text)`` pairs.

    Returns:
        line → the kinds silenced there (``None``: all kinds), and the unknown kind names met, as
        ``"line N: unknown kind 'x'"`` notes.
    """
    ignores: dict[int, frozenset[str] | None] = {}
    notes: list[str] = []
    for number, text in lines:
        match = _IGNORE.search(text) if "tkplan:" in text else None
        if match is None:
            continue
        if match.group(1) is None:
            ignores[number] = None
            continue
        kinds = frozenset(k.strip() for k in match.group(1).split(",") if k.strip())
        for kind in sorted(kinds - set(KINDS)):
            notes.append(f"line {number}: unknown kind {kind!r} in a tkplan: ignore comment")
        ignores[number] = kinds
    return ignores, notes


@contextlib.contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    """Raise the interpreter's recursion limit to at least ``limit`` for a block, then restore it."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _decode(data: bytes) -> tuple[str, str]:
    """Decode Python source as the interpreter would; returns (text, skip reason)."""
    encoding = "utf-8"
    if data.startswith(codecs.BOM_UTF8) or b"coding" in data[:512]:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as exc:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as bad:
                return "", f"not valid UTF-8 text (byte {bad.start}); declare the encoding or re-save as UTF-8"
            return "", f"bad encoding declaration: {exc}"
    try:
        return data.decode(encoding), ""
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding
        return "", f"not valid {name} text (byte {exc.start}); declare the encoding or re-save as UTF-8"


def scan_python(path: str, data: bytes, settings: AuditSettings) -> FileScan:
    """Scan the Python source ``data`` of the file shown as ``path``.

    A file that cannot be decoded or parsed gives a `FileScan` with ``skipped`` set; this function
    raises nothing for bad input.
    """
    text, reason = _decode(data)
    if reason:
        return FileScan(path, skipped=reason)
    try:
        tree = ast.parse(data, filename=path)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return FileScan(path, skipped=f"syntax error{where}: {exc.msg}")
    except (ValueError, MemoryError, RecursionError) as exc:
        return FileScan(path, skipped=f"cannot parse: {exc.__class__.__name__}: {exc}")
    rules = Rules(settings, path)
    visitor = _Visitor(rules)
    try:
        visitor.visit(tree)
    except RecursionError:
        # The parser accepts deeper trees than the default limit lets a recursive visitor walk
        # (long `a + b + ...` chains); Python-to-Python calls use no C stack, so a higher limit is safe.
        visitor = _Visitor(rules)
        try:
            with _recursion_limit(_DEEP_RECURSION_LIMIT):
                visitor.visit(tree)
        except RecursionError:
            return FileScan(path, skipped="too deeply nested to scan")
    found = visitor.found
    if not found:
        return FileScan(path)
    lines: list[str] | None = None
    ignores: dict[int, frozenset[str] | None] = {}
    notes: list[str] = []
    if "tkplan:" in text:
        lines = _LINE_BREAK.split(text)
        ignores, notes = parse_ignores((n, lines[n - 1]) for n in sorted({f[0] for f in found}) if n <= len(lines))
    ascii_only = data.isascii()
    findings = []
    for line, offset, kind, key, value, scope, suggested in found:
        silenced = ignores.get(line, ())
        if silenced is None or kind in silenced:  # type: ignore[operator]
            continue
        if ascii_only:
            col = offset + 1
        else:
            if lines is None:
                lines = _LINE_BREAK.split(text)
            source_line = lines[line - 1] if line <= len(lines) else ""
            col = len(source_line.encode("utf-8")[:offset].decode("utf-8", "replace")) + 1
        findings.append(Finding(path, line, col, kind, key, value, scope, suggested))
    return FileScan(path, tuple(findings), notes=tuple(f"{path}: {n}" for n in notes))
