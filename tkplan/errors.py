"""Exceptions raised by tkplan, one root for all of them.

The tree::

    TkplanError                    root: anything tkplan refuses to do
    ├── ConfigError                a profile, override or campaign is wrong (one or more problems)
    │   └── ProfileNotFoundError   a profile name resolved to no file on the search path
    ├── HardwareError              a hardware spec file is unreadable or invalid
    ├── PlanningError              a valid config cannot be honoured on this hardware
    ├── PlanError                  a plan file is unreadable, edited (hash mismatch) or of another format
    ├── DriftError                 the machine differs from the one a plan was compiled for
    ├── DataDriftError             a plan's data file changed (or went) since the plan was compiled
    ├── RunDirError                a run directory is locked, damaged or unusable
    ├── DiskFullError              a write failed for want of space (ENOSPC, EDQUOT)
    ├── DataError                  a data source is missing, malformed or empty
    ├── EngineError                an engine cannot reach or start where steps run (a Ray cluster)
    ├── AuditError                 a path given to ``tkplan audit`` is unusable
    ├── TrackingError              an MLflow store is missing, unreachable, or refused what was logged
    ├── HistoryError               the history store cannot be read or written (locked, damaged, not SQLite)
    └── ExtraMissingError          an optional dependency a command needs is not installed

Library code raises these; only ``tkplan.cli`` turns them into messages, with the exit code `exit_code` gives
(the one mapping from an error to its documented code, `EXIT_CODES`). Where an error crosses a layer,
`error_context` adds where it happened (the file, the plan's hash) as attributes, like httpx's
``request_context``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import attrs

__all__ = [
    "EXIT_CODES",
    "AuditError",
    "ConfigError",
    "DataDriftError",
    "DataError",
    "DiskFullError",
    "DriftError",
    "EngineError",
    "ExtraMissingError",
    "HardwareError",
    "HistoryError",
    "PlanError",
    "PlanningError",
    "Problem",
    "ProfileNotFoundError",
    "RunDirError",
    "TkplanError",
    "TrackingError",
    "did_you_mean",
    "error_context",
    "exit_code",
]


@attrs.frozen
class Problem:
    """One thing wrong with the inputs: what, at which key, and where it came from.

    Attributes:
        message: what is wrong and what was expected.
        path: the dotted key path (``families.lightgbm.num_leaves``), or ``""``.
        origin: where the offending value came from (``file:line:col``, ``env:NAME``, ``cli:arg N``).
        hint: what to do about it, e.g. a "did you mean" suggestion.
    """

    message: str
    path: str = ""
    origin: str = ""
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin else ""
        at = f" @ {self.path}" if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{at}{hint}"


class TkplanError(Exception):
    """Raised when tkplan refuses an input or cannot do what was asked.

    Attributes:
        source: the file the error concerns (a plan, a spec, a run directory), when `error_context` knows it.
        plan_hash: the hash of the plan being compiled or run, when `error_context` knows it.
    """

    source: str | None = None
    plan_hash: str | None = None


class ConfigError(TkplanError, ValueError):
    """Raised when profiles, overrides or the campaign are invalid; carries every problem found."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        self.problems: tuple[Problem, ...] = (
            (Problem(problems),) if isinstance(problems, str) else tuple(problems)
        )
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems in the configuration:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class ProfileNotFoundError(ConfigError):
    """Raised when a profile name is not found in any directory of the search path."""

    def __init__(self, name: str, searched: Sequence[str], origin: str = "") -> None:
        self.name = name
        self.searched = tuple(searched)
        looked = ", ".join(self.searched) or "(empty search path)"
        super().__init__(
            [
                Problem(
                    f"profile {name!r} not found; looked in: {looked}",
                    origin=origin,
                    hint="check the name, or add its directory to TKPLAN_PROFILE_PATH",
                )
            ]
        )


class HardwareError(TkplanError, ValueError):
    """Raised when a hardware spec file cannot be read or does not match the spec schema, or the machine cannot be
    probed; carries every problem found, like `ConfigError`.

    Attributes:
        problems: each problem, located in the spec where it can be.
        heading: what the problems are of (``invalid hardware spec box.yaml (...)``), shown above the list; ``""``
            for a single problem that says it all.
    """

    def __init__(self, problems: Iterable[Problem] | str, heading: str = "") -> None:
        self.problems: tuple[Problem, ...] = (
            (Problem(problems),) if isinstance(problems, str) else tuple(problems)
        )
        self.heading = heading
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.heading and len(self.problems) == 1:
            return str(self.problems[0])
        heading = self.heading or f"{len(self.problems)} problems in the hardware spec"
        return "\n".join([f"{heading}:", *(f"  - {p}" for p in self.problems)])


class PlanningError(TkplanError):
    """Raised when a valid configuration cannot be honoured on the target hardware."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        self.problems: tuple[Problem, ...] = (
            (Problem(problems),) if isinstance(problems, str) else tuple(problems)
        )
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = ["the plan cannot be honoured on this hardware:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class PlanError(TkplanError, ValueError):
    """Raised when a plan file is unreadable, of an unknown format, or was edited after compiling."""


class DriftError(TkplanError):
    """Raised when the current machine differs from the hardware a plan was compiled for."""

    def __init__(self, differences: Sequence[str]) -> None:
        self.differences = tuple(differences)
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = ["this machine differs from the one the plan was compiled for:"]
        lines += [f"  {d}" for d in self.differences]
        lines.append("recompile the plan here, or pass --allow-drift to run it anyway")
        return "\n".join(lines)


class DataDriftError(TkplanError):
    """Raised when a plan's data file is missing or its content differs from the digest the plan recorded.

    Attributes:
        path: the data file where the run looked for it.
        expected: the sha256 the plan recorded.
        actual: the file's sha256 now, ``None`` when it is missing.
    """

    def __init__(self, message: str, *, path: str | None = None, expected: str | None = None,
                 actual: str | None = None) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(message)


class RunDirError(TkplanError):
    """Raised when a run directory is locked by another run, damaged, or cannot be used.

    Attributes:
        path: the file or directory that could not be used, when one is known.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class DiskFullError(TkplanError):
    """Raised when a write fails because the disk (or the user's quota) is full; what was written is kept.

    Attributes:
        path: the file whose write failed, when one is known.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class DataError(TkplanError, ValueError):
    """Raised when a data source is missing, malformed, or leaves a split empty."""


class EngineError(TkplanError):
    """Raised when an engine cannot reach or start where steps run: Ray missing, a cluster unreachable.

    Attributes:
        address: the cluster address that did not answer, when one was given.
    """

    def __init__(self, message: str, *, address: str | None = None) -> None:
        self.address = address
        super().__init__(message)


class AuditError(TkplanError):
    """Raised when ``tkplan audit`` is given a path or baseline it cannot use."""


class TrackingError(TkplanError):
    """Raised when MLflow is not installed, its store cannot be reached, or it refuses a logged value.

    Attributes:
        uri: the MLflow store, when the error is its.
    """

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        self.uri = uri
        super().__init__(message)


class HistoryError(TkplanError):
    """Raised when the history store cannot be read or written: locked too long, damaged, or not a store."""


class ExtraMissingError(TkplanError, ImportError):
    """Raised when a command needs an optional extra (``report``, ``track``) that is not installed."""

    def __init__(self, what: str, extra: str, missing: str) -> None:
        self.extra = extra
        super().__init__(f"{what} needs {missing}, which is not installed: pip install 'tkplan[{extra}]'")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"did you mean {lowered[word.lower()]!r}?"
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)  # "XGBost" → 'xgboost'
    return f"did you mean {lowered[close[0]]!r}?" if close else ""


EXIT_CODES: Mapping[type[TkplanError], int] = {
    ConfigError: 3,
    PlanningError: 4,
    HardwareError: 4,
    PlanError: 5,
    DriftError: 5,
    DataDriftError: 5,
    RunDirError: 5,
    DataError: 6,
    DiskFullError: 7,
    EngineError: 8,
    AuditError: 2,
    TrackingError: 8,
    HistoryError: 8,
    ExtraMissingError: 8,
}
"""The documented exit code of each error (README's table); any other `TkplanError` exits 1."""


def exit_code(error: TkplanError) -> int:
    """The exit code ``tkplan`` ends with on ``error``: its class's in `EXIT_CODES` (the nearest base class's for a
    subclass), else 1."""
    return next((code for cls in type(error).__mro__ if (code := EXIT_CODES.get(cls)) is not None), 1)


@contextmanager
def error_context(*, source: str | None = None, plan_hash: str | None = None) -> Iterator[None]:
    """Within the block, a `TkplanError` leaves with ``source`` and ``plan_hash`` set where it had none.

    Example::

        with error_context(source="plan.json", plan_hash=plan.plan_hash):
            execute(plan, run_dir)
    """
    try:
        yield
    except TkplanError as exc:
        if source is not None and exc.source is None:
            exc.source = source
        if plan_hash is not None and exc.plan_hash is None:
            exc.plan_hash = plan_hash
        raise
