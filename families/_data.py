"""The prepared data of a run: cleaned and split once, saved as ``.npy``, memory-mapped by every step.

`prepare` reads ``data.source`` (see `tkplan.families._sources`), cleans it, splits it by time and writes
``run_dir/data/<digest>/``; every later call — in this process or in any step's child process — loads
those files with ``np.load(mmap_mode="r")`` instead. A ``fcntl.flock`` on ``<digest>.lock`` makes
concurrent children prepare once: the first builds (into a temporary directory, renamed into place), the
others wait and then load. ``<digest>`` is a sha256 prefix of the ``data`` section, ``run.base_seed`` and
the campaign's targets, so a run directory holds one prepared copy per distinct data configuration.

Preparation, in order (every problem is a `DataError` raised before any training):

1. read the source with the campaign's targets; rows sorted by time, then symbol; a duplicate
   (symbol, time) pair is an error;
2. targets: an all-missing target is an error; a binary target must hold only 0 and 1; rows missing any
   campaign target are dropped (``data.nan.target: drop_rows``) or are an error (``error``);
3. features: a column with a larger missing share than ``data.nan.max_feature_nan_ratio`` is an error
   naming the worst columns; ``data.nan.features: drop_rows`` drops rows with a missing feature;
4. cross-section (sources with a symbol column and several symbols): at most ``data.max_cs_samples``
   symbols per timestamp (a seeded random choice), and timestamps with fewer than ``data.min_cs`` symbols
   are dropped;
5. splits by time with ``data.splits`` (`tkplan.families._splits.time_blocks`), then
   ``data.max_samples_per_symbol`` keeps the latest train rows of each symbol;
6. ``impute_median`` fills missing features with medians of the train split; features are clipped to
   ± ``data.safety.feature_clip``; regression targets are capped at median ± ``target_cap_mads`` · MAD of
   the train split (no cap when the MAD is 0);
7. each split must hold rows, and a binary target both classes in the train split; a regression target
   must vary in the train split;
8. leakage: a feature whose absolute correlation with a target on the train split exceeds
   ``data.leakage_max_abs_corr`` is an error naming the column, the correlation and that key.

Files: ``features.npy`` (float32, rows × features), ``target.<name>.npy`` (float64), ``symbols.npy``
(int32 ids into ``meta.json``'s ``symbol_names``), ``times.npy`` (int64 time index, ascending),
``split.<train|val|test>.npy`` (int64 row indices) and ``meta.json`` (names, counts, split bounds, the
resolved ``feature_names`` and the ``dropped_columns`` of the source with their reasons), written last: a
directory with ``meta.json`` is complete. The data is read once per run directory: a source file
changed later is not seen by that run (its steps stay consistent with one another). ``data.chunk_rows``
is the read chunk of file sources.

Keys of ``data`` this layer does not read: ``lookback`` (the sequence families') and
``safety.exp_bounds`` (the network families' safe exponential); ``safety.numpy_errors`` is applied by
`run_step` around each fit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from tkplan.errors import DataError
from tkplan.families._sources import load_source
from tkplan.families._splits import SPLIT_NAMES, cap_per_symbol, time_blocks
from tkplan.planner._convert import thaw

__all__ = ["Dataset", "Part", "build_arrays", "data_digest", "load_prepared", "prepare"]

_META = "meta.json"


@attrs.frozen(eq=False)
class Part:
    """One split of one target: features, target, time index, row numbers in the dataset, symbol ids."""

    x: np.ndarray
    y: np.ndarray
    times: np.ndarray
    rows: np.ndarray
    symbols: np.ndarray


@attrs.frozen(eq=False)
class Dataset:
    """A prepared data set, its arrays memory-mapped from the run's data directory.

    Attributes:
        directory: where the arrays live (``run_dir/data/<digest>``).
        digest: the data configuration's digest.
        features: float32 (rows, features).
        targets: target name → float64 (rows,).
        tasks: target name → ``regression`` | ``binary``.
        symbols: int32 symbol id per row.
        times: int64 time index per row (0 = the earliest timestamp kept), ascending.
        splits: split name → int64 row indices.
        feature_names: one name per feature column.
        meta: the rest of ``meta.json`` (source, symbol names, counts, split bounds).
        built: whether this call built the files (``False``: they were loaded).
    """

    directory: Path
    digest: str
    features: np.ndarray
    targets: Mapping[str, np.ndarray]
    tasks: Mapping[str, str]
    symbols: np.ndarray
    times: np.ndarray
    splits: Mapping[str, np.ndarray]
    feature_names: tuple[str, ...]
    meta: Mapping[str, Any]
    built: bool

    @property
    def cross_sectional(self) -> bool:
        """Whether timestamps hold several symbols (rank IC is then averaged per timestamp)."""
        return bool(self.meta["cross_sectional"])

    def part(self, split: str, target: str) -> Part:
        """The rows of ``split`` (``train``, ``val``, ``test``) for ``target``, loaded into memory.

        Raises:
            KeyError: an unknown split or a target that was not prepared.
        """
        if target not in self.targets:
            raise KeyError(f"target {target!r} was not prepared (prepared: {', '.join(self.targets)})")
        rows = np.asarray(self.splits[split])
        return Part(x=np.asarray(self.features[rows]), y=np.asarray(self.targets[target][rows]),
                    times=np.asarray(self.times[rows]), rows=rows, symbols=np.asarray(self.symbols[rows]))

    @property
    def n_symbols(self) -> int:
        """How many symbols the data set has (1 for a source without a symbol column)."""
        return max(1, len(self.meta["symbol_names"]))


def data_digest(config: Mapping[str, Any]) -> str:
    """The digest naming a prepared data directory: sha256 of the ``data`` section, base seed and targets."""
    key = {"data": thaw(config["data"]), "base_seed": config["run"]["base_seed"],
           "targets": list(config["campaign"]["targets"])}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def prepare(config: Mapping[str, Any], run_dir: str | os.PathLike[str]) -> Dataset:
    """Prepare the run's data once and return it memory-mapped.

    Args:
        config: the plan's resolved configuration (``data``, ``run.base_seed``, ``campaign.targets``).
        run_dir: the run directory; data goes to ``run_dir/data/<digest>/``.

    Raises:
        DataError: the source is unusable or leaves a split empty (see the module docstring).

    .. versionadded:: 0.1
    """
    digest = data_digest(config)
    root = Path(run_dir) / "data"
    final = root / digest
    if (final / _META).is_file():
        return load_prepared(final, built=False)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{digest}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (final / _META).is_file():
                return load_prepared(final, built=False)
            arrays, meta = build_arrays(config)
            meta["digest"] = digest
            for stale in root.glob(f"{digest}.partial-*"):  # left by a process killed while building
                shutil.rmtree(stale, ignore_errors=True)
            partial = root / f"{digest}.partial-{os.getpid()}"
            partial.mkdir()
            for name, array in arrays.items():
                np.save(partial / f"{name}.npy", array)
            (partial / _META).write_text(json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
            os.replace(partial, final)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return load_prepared(final, built=True)


def load_prepared(directory: Path, *, built: bool = False) -> Dataset:
    """Memory-map a prepared data directory written by `prepare`."""
    meta = json.loads((directory / _META).read_text(encoding="utf-8"))

    def array(name: str) -> np.ndarray:
        return np.load(directory / f"{name}.npy", mmap_mode="r")

    return Dataset(
        directory=directory,
        digest=meta["digest"],
        features=array("features"),
        targets={t: array(f"target.{t}") for t in meta["tasks"]},
        tasks=dict(meta["tasks"]),
        symbols=array("symbols"),
        times=array("times"),
        splits={s: array(f"split.{s}") for s in SPLIT_NAMES},
        feature_names=tuple(meta["feature_names"]),
        meta=meta,
        built=built,
    )


def build_arrays(config: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read, clean and split the data in memory: the arrays `prepare` saves and its ``meta.json``.

    Raises:
        DataError: see the module docstring.
    """
    data = config["data"]
    targets = list(config["campaign"]["targets"])
    tasks = {t: str(data["tasks"][t]) for t in targets}
    seed = int(config["run"]["base_seed"])
    raw = load_source(data, targets, seed)
    where = raw.description
    if not len(raw.features):
        raise DataError(f"{where}: no rows")

    labels = raw.symbols if raw.symbols is not None else np.zeros(len(raw.features), dtype=np.int64)
    symbol_names, symbols = np.unique(labels, return_inverse=True)
    time_values = raw.times if raw.times is not None else np.arange(len(raw.features))
    unique_times, times = np.unique(time_values, return_inverse=True)
    order = np.lexsort((symbols, times))
    features, symbols, times = raw.features[order], symbols[order].astype(np.int32), times[order].astype(np.int64)
    values = {t: raw.targets[t][order] for t in targets}
    _check_duplicates(symbols, times, symbol_names, unique_times, where)

    keep = _target_rows(values, tasks, data["nan"]["target"], where)
    features, symbols, times, values = _take(keep, features, symbols, times, values)
    features, symbols, times, values = _take(_feature_rows(features, raw.feature_names, data["nan"], where),
                                             features, symbols, times, values)
    cross_sectional = raw.symbols is not None and len(symbol_names) > 1
    if cross_sectional:
        features, symbols, times, values = _take(
            _cross_section_rows(times, data["min_cs"], data["max_cs_samples"], seed, where),
            features, symbols, times, values)
    kept_times, times = np.unique(times, return_inverse=True)
    times = times.astype(np.int64)
    unique_times = unique_times[kept_times]

    blocks = time_blocks(len(unique_times), data["splits"])
    splits = {name: np.flatnonzero((times >= start) & (times < stop)) for name, (start, stop) in blocks.items()}
    splits["train"] = cap_per_symbol(splits["train"], symbols, times, data["max_samples_per_symbol"])

    features = _impute(features, raw.feature_names, splits["train"], data["nan"]["features"])
    clip = float(data["safety"]["feature_clip"])
    features = np.clip(features, -clip, clip).astype(np.float32)
    caps = {}
    for target, task in tasks.items():
        if task == "regression":
            mads = float(data["safety"]["target_cap_mads"])
            values[target], caps[target] = _cap(values[target], splits["train"], mads)
    _check_splits(values, tasks, splits)
    _check_leakage(features, raw.feature_names, values, splits["train"], float(data["leakage_max_abs_corr"]), where)

    arrays = {"features": features, "symbols": symbols, "times": times,
              **{f"target.{t}": v.astype(np.float64) for t, v in values.items()},
              **{f"split.{s}": rows.astype(np.int64) for s, rows in splits.items()}}
    meta = {
        "source": where,
        "feature_names": list(raw.feature_names),
        "dropped_columns": [{"column": c, "reason": r} for c, r in raw.dropped],
        "symbol_names": [str(s) for s in symbol_names] if raw.symbols is not None else [],
        "tasks": tasks,
        "cross_sectional": cross_sectional,
        "rows": len(features),
        "timestamps": len(unique_times),
        "feature_nan": bool(np.isnan(features).any()),
        "target_caps": caps,
        "splits": {s: {"rows": len(rows), "first_time": str(unique_times[blocks[s][0]]),
                       "last_time": str(unique_times[blocks[s][1] - 1])} for s, rows in splits.items()},
    }
    return arrays, meta


def _take(mask: np.ndarray, features: np.ndarray, symbols: np.ndarray, times: np.ndarray,
          values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    return features[mask], symbols[mask], times[mask], {t: v[mask] for t, v in values.items()}


def _check_duplicates(symbols: np.ndarray, times: np.ndarray, names: np.ndarray, stamps: np.ndarray,
                      where: str) -> None:
    same = (symbols[1:] == symbols[:-1]) & (times[1:] == times[:-1])
    if same.any():
        i = int(np.flatnonzero(same)[0])
        raise DataError(f"{where}: {int(same.sum())} duplicate (symbol, time) row(s), e.g. symbol "
                        f"{names[symbols[i]]!s} at time {stamps[times[i]]!s}; check data.columns.symbol and .time")


def _target_rows(values: Mapping[str, np.ndarray], tasks: Mapping[str, str], policy: str, where: str) -> np.ndarray:
    keep = np.ones(len(next(iter(values.values()))), dtype=bool)
    for target, y in values.items():
        missing = np.isnan(y)
        if missing.all():
            raise DataError(f"{where}: target {target!r} has no value in any row; check the column or drop the "
                            "target from campaign.targets")
        if tasks[target] == "binary":
            known = y[~missing]
            bad = known[(known != 0) & (known != 1)]
            if len(bad):
                raise DataError(f"{where}: binary target {target!r} holds {float(bad[0]):g}; a binary target must "
                                f"be 0 or 1 (or set data.tasks.{target}: regression)")
        if missing.any() and policy == "error":
            raise DataError(f"{where}: target {target!r} is missing in {int(missing.sum())} of {len(y)} rows and "
                            "data.nan.target is 'error'; fill them, or set data.nan.target: drop_rows")
        keep &= ~missing
    return keep


def _feature_rows(features: np.ndarray, names: tuple[str, ...], nan: Mapping[str, Any], where: str) -> np.ndarray:
    if not len(features):
        raise DataError(f"{where}: no row has a value for every campaign target")
    ratio = np.isnan(features).mean(axis=0)
    limit = float(nan["max_feature_nan_ratio"])
    over = np.flatnonzero(ratio > limit)
    if len(over):
        worst = sorted(over, key=lambda i: -ratio[i])
        listed = ", ".join(f"{names[i]} ({ratio[i]:.1%})" for i in worst)
        raise DataError(f"{where}: {len(over)} feature column(s) miss more than data.nan.max_feature_nan_ratio = "
                        f"{limit:g} of their values: {listed}; drop them from data.columns.features, fill them, "
                        "or raise the ratio")
    if nan["features"] == "drop_rows":
        keep = ~np.isnan(features).any(axis=1)
        if not keep.any():
            raise DataError(f"{where}: every row misses some feature, so data.nan.features: drop_rows leaves "
                            "nothing; use impute_median")
        return keep
    return np.ones(len(features), dtype=bool)


def _cross_section_rows(times: np.ndarray, min_cs: int, max_cs: int | None, seed: int, where: str) -> np.ndarray:
    keep = np.ones(len(times), dtype=bool)
    if max_cs is not None:
        key = np.random.default_rng(seed).random(len(times))
        order = np.lexsort((key, times))
        sorted_times = times[order]
        starts = np.flatnonzero(np.r_[True, sorted_times[1:] != sorted_times[:-1]])
        position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        keep[order[position >= max_cs]] = False
    counts = np.bincount(times[keep], minlength=int(times.max()) + 1)
    enough = counts[times] >= min_cs
    if not (keep & enough).any():
        raise DataError(f"{where}: no timestamp has data.min_cs = {min_cs} symbols (the most is {int(counts.max())}); "
                        "lower data.min_cs, or add symbols")
    return keep & enough


def _impute(features: np.ndarray, names: tuple[str, ...], train: np.ndarray, policy: str) -> np.ndarray:
    if policy != "impute_median" or not np.isnan(features).any():
        return features
    observed = ~np.isnan(features[train])
    empty = np.flatnonzero(~observed.any(axis=0))
    if len(empty):
        raise DataError(f"feature(s) {', '.join(names[i] for i in empty)} have no value in the train split, so there "
                        "is no median to impute; drop them from data.columns.features")
    medians = np.nanmedian(features[train], axis=0)
    return np.where(np.isnan(features), medians, features)


def _cap(y: np.ndarray, train: np.ndarray, mads: float) -> tuple[np.ndarray, list[float] | None]:
    centre = float(np.median(y[train]))
    mad = float(np.median(np.abs(y[train] - centre)))
    if not mad > 0:
        return y, None
    low, high = centre - mads * mad, centre + mads * mad
    return np.clip(y, low, high), [low, high]


def _check_splits(values: Mapping[str, np.ndarray], tasks: Mapping[str, str], splits: Mapping[str, np.ndarray]) -> None:
    for name, rows in splits.items():
        if not len(rows):
            raise DataError(f"the {name} split has no rows after cleaning; give more data, or relax data.nan / "
                            "data.min_cs")
    for target, y in values.items():
        train = y[splits["train"]]
        if tasks[target] == "binary" and train.min() == train.max():
            raise DataError(f"binary target {target!r} has a single class ({float(train[0]):g}) in the train split; "
                            "a classifier needs both")
        if tasks[target] == "regression" and not np.ptp(train) > 0:
            raise DataError(f"regression target {target!r} is constant ({float(train[0]):g}) in the train split; "
                            "there is nothing to learn")


def _check_leakage(features: np.ndarray, names: tuple[str, ...], values: Mapping[str, np.ndarray], train: np.ndarray,
                   limit: float, where: str) -> None:
    """Stop at the first feature that a target's train values follow too closely: it leaks the target."""
    x = np.asarray(features[train], dtype=np.float64)
    for target, y in values.items():
        yt = y[train]
        for i, name in enumerate(names):
            column = x[:, i]
            known = np.isfinite(column) & np.isfinite(yt)
            a, b = column[known], yt[known]
            if not (len(a) and np.ptp(a) > 0 and np.ptp(b) > 0):  # a constant has no correlation
                continue
            r = float(np.corrcoef(a, b)[0, 1])
            if abs(r) > limit:
                raise DataError(f"{where}: feature {name!r} has correlation {r:+.4f} with target {target!r} on the "
                                f"train split, beyond data.leakage_max_abs_corr = {limit:g}: it leaks the target; "
                                "leave it out of the features (data.columns.features), or raise "
                                "data.leakage_max_abs_corr to allow it")
