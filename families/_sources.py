"""Data sources: turn ``data.source`` into one raw table of features, targets, symbols and times.

Sources:

``builtin:synthetic_panel``
    A deterministic cross-sectional panel (``data.synthetic``: symbols × timestamps × features, seeded by
    ``run.base_seed``). Features are independent standard normals. A latent signal mixes a linear part (a
    random direction of the features), a product of two random projections and a ``tanh`` of a third, each
    scaled to unit variance, so linear models learn part of it and trees more. Targets, in units of the
    signal's standard deviation:

    - ``fwd_ret_5m`` = signal + ``noise`` · ε;
    - ``fwd_ret_15m`` = signal + a second linear signal + ``noise`` · ε' (the longer horizon adds news);
    - ``will_peak_5m`` = 1 when the symbol's ``fwd_ret_5m`` is above the cross-sectional median of its
      timestamp, else 0: balanced at every timestamp by definition, so there is no threshold to configure.
``builtin:breast_cancer``, ``builtin:diabetes``
    The data sets scikit-learn ships (``sklearn.datasets.load_*``); their one target is named ``target``
    (0/1 for breast_cancer: set ``data.tasks.target: binary`` to classify it). There is no symbol or time:
    row order is time and every row is its own timestamp.
A ``.parquet`` / ``.pq`` or ``.csv`` path
    Columns named by ``data.columns``: ``symbol`` and ``time`` (``null``: one symbol / row order is time),
    ``features`` (``null``: every numeric column that is not the symbol, the time, or a target — one of the
    campaign's targets or any target declared in ``data.tasks``: a future return is never a feature; a listed
    feature that is a target is an error). Every column left out is recorded with its reason
    (``RawTable.dropped``). Targets are the columns named by the campaign's targets. Read in chunks of
    ``data.chunk_rows`` rows. ``tkplan run`` gives the path absolute (the plan stores it relative to the
    project root); a relative path is relative to the working directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from tkplan.errors import DataError, did_you_mean

__all__ = ["BUILTINS", "RawTable", "load_source"]

_SYNTHETIC = "builtin:synthetic_panel"
_SKLEARN = {"builtin:breast_cancer": "load_breast_cancer", "builtin:diabetes": "load_diabetes"}
_SKLEARN_TARGET = "target"
BUILTINS = (_SYNTHETIC, *_SKLEARN)
"""The built-in source names."""

_PARQUET = (".parquet", ".pq")
_CSV = (".csv",)


@attrs.frozen(eq=False)
class RawTable:
    """A source as read, before cleaning and splitting.

    Attributes:
        features: float64 array (rows, features); NaN where missing.
        feature_names: one name per column of ``features``.
        targets: target name → float64 array (rows,); NaN where missing.
        symbols: one label per row, or ``None`` when the source has no symbol column.
        times: one sortable value per row (numbers or ``datetime64``), or ``None``: row order is time.
        description: what was read, for messages and the data directory's ``meta.json``.
        dropped: ``(column, reason)`` for each column of the source that is not a feature.
    """

    features: np.ndarray
    feature_names: tuple[str, ...]
    targets: Mapping[str, np.ndarray]
    symbols: np.ndarray | None
    times: np.ndarray | None
    description: str
    dropped: tuple[tuple[str, str], ...] = ()


def load_source(data: Mapping[str, Any], targets: Sequence[str], base_seed: int) -> RawTable:
    """Read ``data.source`` with the targets the campaign trains.

    Args:
        data: the plan's ``data`` section.
        targets: the target names to read (each must be a column / a target the built-in source makes).
        base_seed: ``run.base_seed``, the synthetic panel's seed.

    Raises:
        DataError: an unknown source, a missing file or column, a column of the wrong type.
    """
    source = str(data["source"])
    if source == _SYNTHETIC:
        table = synthetic_panel(data["synthetic"], base_seed)
    elif source in _SKLEARN:
        table = _sklearn_table(source)
    elif source.startswith("builtin:"):
        hint = did_you_mean(source, BUILTINS) or f"built-in sources: {', '.join(BUILTINS)}"
        raise DataError(f"data.source: unknown built-in source {source!r} ({hint})")
    else:
        table = _file_table(Path(source), data, targets)
    missing = [t for t in targets if t not in table.targets]
    if missing:
        known = ", ".join(sorted(table.targets)) or "none"
        raise DataError(f"target(s) {', '.join(missing)} not in {table.description} (it has: {known}); "
                        "change campaign.targets, or data.source")
    return attrs.evolve(table, targets={t: table.targets[t] for t in targets})


def synthetic_panel(spec: Mapping[str, Any], seed: int) -> RawTable:
    """The built-in synthetic panel for ``data.synthetic`` and ``seed`` (see the module docstring).

    Rows are ordered by timestamp, then symbol.
    """
    n_sym, n_time, n_feat = int(spec["symbols"]), int(spec["timestamps"]), int(spec["features"])
    noise = float(spec["noise"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_time, n_sym, n_feat))

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    def standard(v: np.ndarray) -> np.ndarray:
        spread = v.std()
        return (v - v.mean()) / spread if spread > 0 else v - v.mean()

    linear = x @ unit(rng.standard_normal(n_feat))
    product = (x @ unit(rng.standard_normal(n_feat))) * (x @ unit(rng.standard_normal(n_feat)))
    bent = np.tanh(x @ unit(rng.standard_normal(n_feat)))
    signal = standard(standard(linear) + standard(product) + standard(bent))
    later = standard(x @ unit(rng.standard_normal(n_feat)))
    ret5 = signal + noise * rng.standard_normal(signal.shape)
    ret15 = signal + later + noise * rng.standard_normal(signal.shape)
    peak = (ret5 > np.median(ret5, axis=1, keepdims=True)).astype(np.float64)

    width = len(str(max(n_sym, n_feat) - 1))
    names = tuple(f"f{i:0{width}d}" for i in range(n_feat))
    symbols = np.array([f"S{i:0{width}d}" for i in range(n_sym)])
    rows = n_time * n_sym
    return RawTable(
        features=x.reshape(rows, n_feat),
        feature_names=names,
        targets={"fwd_ret_5m": ret5.reshape(rows), "fwd_ret_15m": ret15.reshape(rows),
                 "will_peak_5m": peak.reshape(rows)},
        symbols=np.tile(symbols, n_time),
        times=np.repeat(np.arange(n_time, dtype=np.int64), n_sym),
        description=f"{_SYNTHETIC} ({n_sym} symbols × {n_time} timestamps × {n_feat} features, seed {seed})",
    )


def _sklearn_table(source: str) -> RawTable:
    from sklearn import datasets

    bunch = getattr(datasets, _SKLEARN[source])()
    return RawTable(
        features=np.asarray(bunch.data, dtype=np.float64),
        feature_names=tuple(str(n) for n in bunch.feature_names),
        targets={_SKLEARN_TARGET: np.asarray(bunch.target, dtype=np.float64)},
        symbols=None,
        times=None,
        description=source,
    )


def _file_table(path: Path, data: Mapping[str, Any], targets: Sequence[str]) -> RawTable:
    suffix = path.suffix.lower()
    if suffix not in _PARQUET + _CSV:
        raise DataError(f"data.source: {path} is neither a built-in source nor a .parquet/.csv file "
                        f"(built-in: {', '.join(BUILTINS)})")
    if not path.is_file():
        raise DataError(f"data.source: no file {path} (looked from {Path.cwd()}); check the path")
    columns = data["columns"]
    symbol, time, wanted = columns["symbol"], columns["time"], columns["features"]
    available = _columns(path, suffix)
    named = [c for c in (symbol, time) if c is not None] + list(targets) + list(wanted or ())
    roles = [("symbol", "data.columns.symbol", symbol), ("time", "data.columns.time", time)]
    roles += [("target", "campaign.targets", t) for t in targets]
    roles += [("feature", "data.columns.features", f) for f in wanted or ()]
    for role, key, name in roles:
        if name is not None and name not in available:
            hint = did_you_mean(name, available) or f"columns: {', '.join(available)}"
            raise DataError(f"{path.name}: no {role} column {name!r} ({key}; {hint})")
    frame = _read(path, suffix, list(dict.fromkeys(named)) if wanted is not None else None, int(data["chunk_rows"]))
    import pandas as pd

    declared = [t for t in data["tasks"] if t not in targets]
    leaking = [f for f in wanted or () if f in targets or f in declared]
    if leaking:
        raise DataError(f"{path.name}: {', '.join(map(repr, leaking))} in data.columns.features is a target "
                        "(campaign.targets or data.tasks); a target is never a feature: remove it from the list")
    reasons = {symbol: "the symbol column (data.columns.symbol)", time: "the time column (data.columns.time)"}
    reasons.update({t: "a target of the campaign (campaign.targets)" for t in targets})
    reasons.update({t: "a declared target (data.tasks), never a feature" for t in declared})
    if wanted is None:
        for c in frame.columns:
            if c not in reasons and not pd.api.types.is_numeric_dtype(frame[c]):
                reasons[c] = f"not numeric (dtype {frame[c].dtype}); encode it to use it"
        feature_cols = [c for c in frame.columns if c not in reasons]
    else:
        feature_cols = list(wanted)
        reasons.update({c: "not in data.columns.features" for c in available if c not in reasons and c not in wanted})
    dropped = tuple((str(c), reasons[c]) for c in available if c in reasons)
    if not feature_cols:
        raise DataError(f"{path.name}: no numeric feature column (columns: {', '.join(map(str, frame.columns))}); "
                        "list them in data.columns.features")
    for name in feature_cols:
        _require_numeric(frame, name, "feature", path)
    for name in targets:
        _require_numeric(frame, name, "target", path)
    times = None
    if time is not None:
        times = _time_values(frame[time], time, path)
    return RawTable(
        features=frame[feature_cols].to_numpy(dtype=np.float64, na_value=np.nan),
        feature_names=tuple(str(c) for c in feature_cols),
        targets={t: frame[t].to_numpy(dtype=np.float64, na_value=np.nan) for t in targets},
        symbols=None if symbol is None else frame[symbol].astype(str).to_numpy(),
        times=times,
        description=f"{path} ({len(frame)} rows)",
        dropped=dropped,
    )


def _columns(path: Path, suffix: str) -> list[str]:
    try:
        if suffix in _PARQUET:
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as exc:  # pyarrow and pandas raise many types for a corrupt file
        raise DataError(f"data.source: cannot read {path}: {exc}") from None


def _read(path: Path, suffix: str, columns: list[str] | None, chunk_rows: int) -> Any:
    import pandas as pd

    try:
        if suffix in _PARQUET:
            import pyarrow.parquet as pq

            batches = [b.to_pandas() for b in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns)]
        else:
            batches = list(pd.read_csv(path, usecols=columns, chunksize=chunk_rows))
    except Exception as exc:  # pyarrow and pandas raise many types for a malformed file
        raise DataError(f"data.source: cannot read {path}: {exc}") from None
    if not batches:
        raise DataError(f"data.source: {path} has no rows")
    frame = pd.concat(batches, ignore_index=True)
    if frame.empty:
        raise DataError(f"data.source: {path} has no rows")
    return frame


def _require_numeric(frame: Any, name: str, role: str, path: Path) -> None:
    import pandas as pd

    column = frame[name]
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return
    converted = pd.to_numeric(column, errors="coerce")
    bad = column[converted.isna() & column.notna()]
    if len(bad):
        raise DataError(f"{path.name}: {role} column {name!r} has dtype {column.dtype} and non-numeric values "
                        f"such as {bad.iloc[0]!r}; a {role} must be numeric (encode it, or leave it out of "
                        f"{'data.columns.features' if role == 'feature' else 'campaign.targets'})")
    frame[name] = converted


def _time_values(column: Any, name: str, path: Path) -> np.ndarray:
    import pandas as pd

    if column.isna().any():
        raise DataError(f"{path.name}: time column {name!r} has {int(column.isna().sum())} missing value(s); "
                        "every row needs a time")
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column.to_numpy()
    try:
        return pd.to_datetime(column).to_numpy()
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path.name}: time column {name!r} (dtype {column.dtype}) is neither numeric nor "
                        f"parseable as timestamps ({exc}); store numbers or ISO-8601 times") from None
