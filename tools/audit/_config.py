"""The audit's settings: one `AuditSettings` class, and reading it from ``[tool.tkplan.audit]``.

Every tuning number of the audit (file size limit, pool size, chunking) is a field of `AuditSettings`
with its default documented there; nothing else in the package hard-codes one.

``pyproject.toml`` example (keys may be written with ``-`` or ``_``)::

    [tool.tkplan.audit]
    exclude = ["tests/*", "*/vendored/*"]   # globs, added to the default excludes
    kinds = ["constant", "threshold"]       # report only these kinds (default: all)
    disable-noise = ["bool_defaults"]       # noise filters to switch off (default: all on)
    constructors = ["MyEstimator"]          # more constructor names for `constructor_kwarg`
    config-receivers = ["hp"]               # more config-like names for `get_default`
    vocabulary = ["momentum"]               # more setting names (besides the profiles' and schemas')
    family-aliases = { lgbm2 = "lightgbm" } # module stem -> tkplan family
    max-file-bytes = 2097152
    workers = 2
    baseline = "audit-baseline.json"        # used by the CLI when --baseline is not given
    profiles = ["profiles"]                 # used by the CLI when --profiles is not given
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tkplan.errors import AuditError, did_you_mean

from ._findings import KINDS, NOISE_FILTERS

__all__ = ["DEFAULT_EXCLUDES", "AuditSettings", "ProjectConfig", "find_pyproject", "load_project_config"]

DEFAULT_EXCLUDES: tuple[str, ...] = (  # tkplan: ignore[constant]
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".tox",
    ".nox",
    ".venv",
    "venv",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
)
"""Names never descended into, matched against each file or directory name."""


def _names(known: Mapping[str, str], what: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: frozenset[str]) -> None:
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(
                f"{attribute.name}: unknown {what} {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(sorted(known))}"
            )

    return check


def _non_negative(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def _frozenset(value: Any) -> frozenset[str]:
    return frozenset(value)


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value)


def _mapping(value: Any) -> Mapping[str, str]:
    return dict(value)


@attrs.frozen
class AuditSettings:
    """What the audit reports and how it runs; every default is documented here.

    Attributes:
        exclude: globs of files and directories to leave out, matched against the display path and the
            name; added to `DEFAULT_EXCLUDES` unless ``use_default_excludes`` is false.
        use_default_excludes: also leave out `DEFAULT_EXCLUDES` (VCS, caches, virtualenvs).
        kinds: the kinds reported; all of `KINDS` by default.
        noise: the noise filters switched on; all of `NOISE_FILTERS` by default.
        constructors: more callee names whose literal keyword arguments are ``constructor_kwarg``.
        config_receivers: more receiver names whose ``.get(key, literal)`` is ``get_default``.
        vocabulary: more setting names (config keys such as ``momentum``), besides those of the shipped
            profiles and schemas and of ``--profiles``, which `audit` adds itself (see `Vocabulary`).
        family_aliases: more module stems that mean a tkplan family (``{"lgbm2": "lightgbm"}``).
        max_file_bytes: files larger than this are skipped (2 MiB: generated tables, not code).
        max_literal_items: a container literal with more items is data, not a setting (50).
        max_config_leaves: a YAML/JSON/TOML file with more values is data, not configuration (200).
        workers: processes for a large tree; 0 = the usable CPUs of this process (affinity).
        serial_below: trees with fewer files are scanned in this process; a pool costs more (50).
        chunk_bytes: a pool task holds files up to this many bytes in all (256 KiB) ...
        chunk_files: ... and at most this many files (32); large files first, so no worker idles at the end.

    .. versionadded:: 0.1
    """

    exclude: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    use_default_excludes: bool = True
    kinds: frozenset[str] = attrs.field(
        default=frozenset(KINDS), converter=_frozenset, validator=_names(KINDS, "kind")
    )
    noise: frozenset[str] = attrs.field(
        default=frozenset(NOISE_FILTERS), converter=_frozenset, validator=_names(NOISE_FILTERS, "noise filter")
    )
    constructors: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    config_receivers: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    vocabulary: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    family_aliases: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping, hash=False)
    max_file_bytes: int = attrs.field(default=2 * 2**20, validator=_non_negative)
    max_literal_items: int = attrs.field(default=50, validator=_non_negative)
    max_config_leaves: int = attrs.field(default=200, validator=_non_negative)
    workers: int = attrs.field(default=0, validator=_non_negative)
    serial_below: int = attrs.field(default=50, validator=_non_negative)
    chunk_bytes: int = attrs.field(default=256 * 2**10, validator=_non_negative)
    chunk_files: int = attrs.field(default=32, validator=_non_negative)

    @property
    def excludes(self) -> tuple[str, ...]:
        """All exclude globs in force."""
        return (DEFAULT_EXCLUDES if self.use_default_excludes else ()) + self.exclude

    def worker_count(self) -> int:
        """The number of pool processes: ``workers``, or the CPUs this process may run on."""
        if self.workers:
            return self.workers
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1


@attrs.frozen
class ProjectConfig:
    """Settings read from a ``pyproject.toml``, plus the CLI defaults it names (paths made absolute).

    Attributes:
        settings: the audit settings.
        baseline: the baseline file, or ``None``.
        profiles: profile files or directories to compare with.
        source: the pyproject.toml read, or ``None`` when there was none.
    """

    settings: AuditSettings = AuditSettings()
    baseline: Path | None = None
    profiles: tuple[Path, ...] = ()
    source: Path | None = None


_KEYS = {
    "exclude",
    "use_default_excludes",
    "kinds",
    "disable_noise",
    "constructors",
    "config_receivers",
    "vocabulary",
    "family_aliases",
    "max_file_bytes",
    "max_literal_items",
    "max_config_leaves",
    "workers",
    "serial_below",
    "chunk_bytes",
    "chunk_files",
    "baseline",
    "profiles",
}


def find_pyproject(start: str | os.PathLike[str]) -> Path | None:
    """Return the nearest ``pyproject.toml`` in ``start`` (a file's directory) or above it, or ``None``."""
    here = Path(start).resolve()
    if not here.is_dir():
        here = here.parent
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_project_config(pyproject: str | os.PathLike[str] | None) -> ProjectConfig:
    """Read ``[tool.tkplan.audit]`` from ``pyproject``; ``None`` or a file without the table gives defaults.

    Raises:
        AuditError: the file is unreadable or not TOML, or the table has an unknown key or a bad value.
    """
    if pyproject is None:
        return ProjectConfig()
    path = Path(pyproject)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        if b"tkplan" not in raw:
            return ProjectConfig(source=path)
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise AuditError(f"{path}: reading [tool.tkplan.audit] needs Python 3.11 or the tomli package") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AuditError(f"{path}: not valid TOML: {exc}") from None
    table = document.get("tool", {}).get("tkplan", {}).get("audit", {})
    if not isinstance(table, dict):
        raise AuditError(f"{path}: [tool.tkplan.audit] must be a table")
    return _from_table(table, path)


def _from_table(table: Mapping[str, Any], path: Path) -> ProjectConfig:
    options: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in _KEYS:
            hint = did_you_mean(raw_key, sorted(k.replace("_", "-") for k in _KEYS))
            raise AuditError(f"{path}: unknown key {raw_key!r} in [tool.tkplan.audit]" + (f"; {hint}" if hint else ""))
        options[key] = value
    where = f"{path}: [tool.tkplan.audit]"
    for key in ("exclude", "kinds", "disable_noise", "constructors", "config_receivers", "vocabulary", "profiles"):
        if key in options and not (
            isinstance(options[key], list) and all(isinstance(v, str) for v in options[key])
        ):
            raise AuditError(f"{where} {key.replace('_', '-')} must be a list of strings, got {options[key]!r}")
    if "family_aliases" in options and not (
        isinstance(options["family_aliases"], dict)
        and all(isinstance(v, str) for v in options["family_aliases"].values())
    ):
        raise AuditError(f"{where} family-aliases must be a table of strings")
    root = path.parent
    baseline = options.pop("baseline", None)
    if baseline is not None and not isinstance(baseline, str):
        raise AuditError(f"{where} baseline must be a path string, got {baseline!r}")
    profiles = tuple(root / p for p in options.pop("profiles", ()))
    disabled = options.pop("disable_noise", ())
    unknown = sorted(set(disabled) - set(NOISE_FILTERS))
    if unknown:
        raise AuditError(f"{where} disable-noise: unknown filter {unknown[0]!r}; expected some of "
                         f"{', '.join(sorted(NOISE_FILTERS))}")
    options["noise"] = frozenset(NOISE_FILTERS) - set(disabled)
    try:
        settings = AuditSettings(**options)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"{where} {exc}") from None
    return ProjectConfig(
        settings=settings,
        baseline=root / baseline if baseline else None,
        profiles=profiles,
        source=path,
    )
