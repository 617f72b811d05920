"""The family adapter interface: an ABC with documented attributes, and the registry that `run_step` reads.

An adapter turns one planned step into a fitted model of one library. It takes every hyperparameter from
``step.params`` (by the names of ``profiles/families/<family>.yaml``), the seed from ``step.seed`` and the
thread count from ``step.resources.threads``; it reads no environment variable and no file of its own, and
imports its library inside `FamilyAdapter.fit`, never at module import.

Register a new adapter as threadpoolctl registers a ``LibController``::

    class MyAdapter(FamilyAdapter):
        family = "my_family"
        tasks = ("regression",)
        library = "sklearn"
        model_file = "model.joblib"

        def fit(self, data, step): ...
        def predict(self, model, x, times, symbols): ...
        def save(self, model, path): ...

    register(MyAdapter)
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

if TYPE_CHECKING:
    from tkplan.planner._plan import Step

__all__ = ["FamilyAdapter", "FitResult", "Params", "TrainingData", "adapter_for", "register", "registered"]


@attrs.frozen(eq=False)
class TrainingData:
    """What `FamilyAdapter.fit` may see: the train and validation parts of the step's target(s); never the test part.

    Attributes:
        x_train: features of the train rows, float32, shape (rows, features).
        y_train: the target on the train rows (0/1 for a binary target); shape (rows,), or (rows, targets)
            for a multi-target step, one column per entry of ``targets``.
        t_train: the time index of each train row (ascending), for time-aware folds.
        x_val: features of the validation rows (used for early stopping where the library has it).
        y_val: the target(s) on the validation rows.
        t_val: the time index of each validation row.
        feature_names: one name per feature column (cascade columns are ``pred:<step id>``).
        task: ``regression`` or ``binary`` (``multi`` for a multi-target step).
        s_train: the symbol id (int32, 0 ≤ id < ``n_symbols``) of each train row, for per-symbol sequences and
            learned asset embeddings.
        s_val: the symbol id of each validation row.
        n_symbols: how many symbols the data set has (ids run from 0 to ``n_symbols - 1``).
        targets: the target name of each column of ``y_train`` (one name for a single-target step).
        tasks: the task of each target, in the order of ``targets``.
        work_dir: a directory the fit may write into while it runs (the step's directory: checkpoints of
            the best epoch), or ``None`` when it must write nothing.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    t_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    t_val: np.ndarray
    feature_names: tuple[str, ...]
    task: str
    s_train: np.ndarray | None = None
    s_val: np.ndarray | None = None
    n_symbols: int = 1
    targets: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    work_dir: Path | None = None


@attrs.frozen(eq=False)
class FitResult:
    """A fitted model and what the library was told.

    Attributes:
        model: the library's fitted object, as `FamilyAdapter.predict` and `FamilyAdapter.save` take it.
        threads: what the library reports it runs with, read back from the library after the fit where it
            can say (``{"lightgbm.num_threads": 4}``, ``{"rf.n_jobs": 4, "hgb.openmp": 4}``); the runtime
            and the tests compare these with ``step.resources.threads``.
        params_used: the ``step.params`` keys the adapter passed on (see `Params`); every planned key must be.
        info: JSON-ready facts of the fit, e.g. the best iteration found by early stopping.
    """

    model: Any
    threads: Mapping[str, int]
    params_used: frozenset[str]
    info: Mapping[str, Any] = attrs.field(factory=dict)


class Params(Mapping[str, Any]):
    """A read-only view of ``step.params`` that remembers which keys were read.

    A missing key is a `KeyError` naming the family and the key: there is no fallback value in code.
    """

    def __init__(self, step: Step) -> None:
        self._values = step.params
        self._family = step.family
        self._read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            raise KeyError(f"families.{self._family}.{key} is not in the plan; add it to the family profile")
        self._read.add(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def used(self) -> frozenset[str]:
        """The keys read so far."""
        return frozenset(self._read)


class FamilyAdapter(abc.ABC):
    """Fits one model family from a planned step.

    Required class attributes:
        family: the family key, as in ``profiles/families/<family>.yaml`` (``lightgbm``).
        tasks: the tasks the adapter can train (``("regression", "binary")``).
        library: the library that does the work (``lightgbm``), for reports.
        backend: the ``runtime.backends`` entry it implements (default: ``library``); a family with several
            backends (``torch``, ``tf``) has one adapter per backend, and the plan's ``campaign.nn_backend``
            picks.
        multi_target: whether one fit trains several targets at once (``y`` with a column per target).
        planner_keys: profile keys the planner reads to size the step (e.g. batch scaling), which the
            adapter need not pass on.
        model_file: the file name the model is saved under in the step directory, in the library's own
            format (``model.txt``, ``model.json``, ``model.joblib``).

    .. versionadded:: 0.1
    """

    family: str
    tasks: tuple[str, ...]
    library: str
    model_file: str
    backend: str = ""
    multi_target: bool = False
    planner_keys: tuple[str, ...] = ()

    @classmethod
    def backend_name(cls) -> str:
        """The backend this adapter implements: ``backend``, or ``library`` when that is not set."""
        return cls.backend or cls.library

    @abc.abstractmethod
    def fit(self, data: TrainingData, step: Step) -> FitResult:
        """Fit the model on ``data`` with the step's hyperparameters, seed and threads.

        Args:
            data: the train and validation parts of the step's target.
            step: the planned step: ``params``, ``seed``, ``resources.threads``, ``task``.

        Returns:
            the fitted model, the thread counts the library reports, and the hyperparameters used.
        """

    @abc.abstractmethod
    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """Predict one value per row of ``x``: the estimate (regression) or P(y = 1) (binary).

        A multi-target adapter returns one column per target, in the order of ``TrainingData.targets``.

        Args:
            model: what `fit` returned in `FitResult.model`.
            x: features, float32 (rows, features).
            times: the time index of each row (ascending), for models that read the cross-section.
            symbols: the symbol id of each row, for models that read per-symbol sequences or embeddings.
        """

    @abc.abstractmethod
    def save(self, model: Any, path: Path) -> None:
        """Write ``model`` to ``path`` in the library's own format."""


_registry: dict[tuple[str, str], type[FamilyAdapter]] = {}

_REQUIRED = ("family", "tasks", "library", "model_file")


def register(adapter: type[FamilyAdapter], *, replace: bool = False) -> type[FamilyAdapter]:
    """Make ``adapter`` the one `run_step` uses for its family and backend.

    Args:
        adapter: a concrete `FamilyAdapter` subclass.
        replace: allow replacing an adapter already registered for that family and backend.

    Returns:
        ``adapter``, so that ``register`` works as a class decorator.

    Raises:
        TypeError: not a concrete `FamilyAdapter` subclass, or a required attribute is missing.
        ValueError: the family already has an adapter for that backend and ``replace`` is false.

    .. versionadded:: 0.1
    """
    if not (isinstance(adapter, type) and issubclass(adapter, FamilyAdapter)) or _is_abstract(adapter):
        raise TypeError(f"{adapter!r} is not a concrete FamilyAdapter subclass")
    missing = [name for name in _REQUIRED if not hasattr(adapter, name)]
    if missing:
        raise TypeError(f"{adapter.__name__} lacks the required attribute(s) {', '.join(missing)}")
    key = (adapter.family, adapter.backend_name())
    if key in _registry and not replace and _registry[key] is not adapter:
        raise ValueError(f"family {adapter.family!r} already has the {key[1]} adapter {_registry[key].__name__}; "
                         "pass replace=True to replace it")
    _registry[key] = adapter
    return adapter


def _is_abstract(cls: type) -> bool:
    """Whether ``cls`` still has abstract methods."""
    return bool(getattr(cls, "__abstractmethods__", ()))


def adapter_for(family: str, backend: str | None = None) -> FamilyAdapter:
    """Return a new instance of the adapter registered for ``family`` (and ``backend``, when given).

    Without ``backend``, the family must have exactly one adapter.

    Raises:
        LookupError: no adapter for that family or backend (the message lists the registered ones).
    """
    found = [cls for (name, impl), cls in _registry.items() if name == family and backend in (None, impl)]
    if len(found) == 1:
        return found[0]()
    if not found:
        known = ", ".join(f"{name} ({impl})" for name, impl in sorted(_registry)) or "none"
        wanted = f"family {family!r}" + (f" on backend {backend!r}" if backend else "")
        raise LookupError(f"no built-in adapter for {wanted} (registered: {known}); "
                          "give the family an `entrypoint: package.module:function` in its profile")
    backends = ", ".join(sorted(cls.backend_name() for cls in found))
    raise LookupError(f"family {family!r} has adapters for several backends ({backends}); name one")


def registered() -> tuple[str, ...]:
    """The families that have an adapter, sorted."""
    return tuple(sorted({family for family, _ in _registry}))
