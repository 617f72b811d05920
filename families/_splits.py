"""Time-aware splits: train/validation/test by time with a purge gap, the per-symbol cap, purged folds.

Nothing is shuffled across time. With ``U`` distinct timestamps (ascending), the last
``round(U · test_ratio)`` are test, the ``round(U · val_ratio)`` before them (and ``purge_gap`` earlier) are
validation, and train is everything before the validation block less another ``purge_gap``: the purged
timestamps belong to no split, so a target that looks ``purge_gap`` bars ahead cannot leak across.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tkplan.errors import DataError

__all__ = ["SPLIT_NAMES", "cap_per_symbol", "purged_folds", "time_blocks"]

SPLIT_NAMES = ("train", "val", "test")  # tkplan: ignore[constant] -- names, not a setting
"""The split names, in time order."""


def time_blocks(n_times: int, splits: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """The time-index range ``[start, stop)`` of each split.

    Args:
        n_times: distinct timestamps after cleaning.
        splits: the plan's ``data.splits`` (``val_ratio``, ``test_ratio``, ``purge_gap``).

    Raises:
        DataError: a split would be empty; the message gives the arithmetic and what to change.
    """
    gap = int(splits["purge_gap"])
    n_test = round(n_times * float(splits["test_ratio"]))
    n_val = round(n_times * float(splits["val_ratio"]))
    test = (n_times - n_test, n_times)
    val = (test[0] - gap - n_val, test[0] - gap)
    train = (0, val[0] - gap)
    arithmetic = (f"{n_times} timestamps: test {n_test} (test_ratio {splits['test_ratio']}), "
                  f"val {n_val} (val_ratio {splits['val_ratio']}), purge_gap {gap} twice, train {max(train[1], 0)}")
    for name, (start, stop) in (("test", test), ("val", val), ("train", train)):
        if stop - start < 1 or start < 0:
            raise DataError(f"the {name} split is empty: {arithmetic}; give more timestamps "
                            "(data.synthetic.timestamps or a longer file), or lower data.splits.purge_gap / the ratios")
    return {"train": train, "val": val, "test": test}


def cap_per_symbol(rows: np.ndarray, symbols: np.ndarray, times: np.ndarray, cap: int | None) -> np.ndarray:
    """Keep the latest ``cap`` of ``rows`` of each symbol (all when ``cap`` is ``None``), in row order."""
    if cap is None or not len(rows):
        return rows
    sym, neg_time = symbols[rows], -times[rows]
    order = np.lexsort((neg_time, sym))
    sorted_sym = sym[order]
    starts = np.flatnonzero(np.r_[True, sorted_sym[1:] != sorted_sym[:-1]])
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return np.sort(rows[order[position < cap]])


def purged_folds(times: np.ndarray, n_splits: int, purge: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Contiguous time folds with a purge on both sides of each held-out block (purged k-fold).

    Each row is held out exactly once (so the folds suit out-of-fold stacking); a fold trains on the rows at
    least ``purge`` timestamps away from its held-out block.

    Args:
        times: the time index of each row (ascending).
        n_splits: how many folds.
        purge: timestamps dropped from training on each side of the held-out block.

    Raises:
        DataError: fewer distinct timestamps than folds, or a fold left with nothing to train on.
    """
    unique = np.unique(times)
    if len(unique) < n_splits:
        raise DataError(f"{n_splits} stacking folds need at least {n_splits} timestamps in the train split, "
                        f"got {len(unique)}; lower families.ensemble.stacking_cv or give more data")
    for block in np.array_split(unique, n_splits):
        held = (times >= block[0]) & (times <= block[-1])
        train = (times < block[0] - purge) | (times > block[-1] + purge)
        if not train.any():
            raise DataError(f"a stacking fold has no training rows once {purge} timestamps are purged on each side "
                            "(families.ensemble.purge_overlap); lower it, or stacking_cv, or give more data")
        yield np.flatnonzero(train), np.flatnonzero(held)
