"""The data side of the network families: feature and target scaling, per-symbol lookback windows.

Features are standardised on the train split (`Standardiser`); a regression target is standardised for
training and its predictions mapped back, a binary target is trained on logits and predicted as P(y = 1)
(`Targets`).

A sequence family sees, for each row, the ``lookback`` most recent rows of the same symbol up to and
including it — within the same split only, so no window reaches across a split boundary (nor across the
purge gap between splits). `window_index` gives those rows as indices; a row with less history in its
split is left-padded with index ``rows`` (one past the last row), the all-zero row that
`Standardiser.padded` appends: the train mean once standardised. Windows are gathered batch by batch
from the index, so a split's windows are never all in memory at once.
"""

from __future__ import annotations

import attrs
import numpy as np

__all__ = ["Standardiser", "Targets", "symbol_ids", "window_index"]


def symbol_ids(symbols: np.ndarray | None, rows: int) -> np.ndarray:
    """The rows' symbol ids as int64, or all 0 when the data has no symbol column."""
    return np.zeros(rows, dtype=np.int64) if symbols is None else np.asarray(symbols, dtype=np.int64)


def window_index(symbols: np.ndarray, times: np.ndarray, lookback: int) -> np.ndarray:
    """For each row, the rows of its lookback window, oldest first: int64 (rows, lookback); ``rows`` = padding.

    Args:
        symbols: the symbol id of each row of one split.
        times: the time index of each row.
        lookback: the window length; the last entry of each window is the row itself.
    """
    n = len(symbols)
    if n == 0:
        return np.empty((0, lookback), dtype=np.int64)
    order = np.lexsort((times, symbols))  # by symbol, then time
    grouped = np.asarray(symbols)[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    back = np.arange(n)[:, None] + np.arange(1 - lookback, 1)[None, :]
    inside = back >= group_start[:, None]
    windows = np.where(inside, order[np.clip(back, 0, None)], n)
    index = np.empty_like(windows)
    index[order] = windows
    return index


@attrs.frozen(eq=False)
class Standardiser:
    """Feature centring and scaling learned on the train split (a constant feature is only centred).

    Attributes:
        mean: per-feature mean of the train rows.
        scale: per-feature standard deviation of the train rows (1 where it is 0).
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        """Learn the mean and spread of each column of ``x``."""
        mean = x.mean(axis=0, dtype=np.float64)
        scale = x.std(axis=0, dtype=np.float64)
        return cls(mean=mean.astype(np.float32), scale=np.where(scale > 0, scale, 1.0).astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` centred and scaled, float32."""
        return ((x - self.mean) / self.scale).astype(np.float32)

    def padded(self, x: np.ndarray) -> np.ndarray:
        """`apply`, with one all-zero row appended: the padding row of `window_index`."""
        scaled = self.apply(x)
        return np.concatenate([scaled, np.zeros((1, scaled.shape[1]), dtype=np.float32)])


@attrs.frozen(eq=False)
class Targets:
    """How each target is trained and predicted: standardised regression values, logits for binary ones.

    Attributes:
        tasks: each target's task (``regression`` or ``binary``), in column order.
        mean: per target, the train mean (0 for a binary target).
        scale: per target, the train standard deviation (1 for a binary target, or when it is 0).
    """

    tasks: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, y: np.ndarray, tasks: tuple[str, ...]) -> Targets:
        """Learn the scaling of ``y`` (rows,) or (rows, targets) on the train rows."""
        columns = _columns(y)
        regression = np.array([task == "regression" for task in tasks])
        mean = np.where(regression, columns.mean(axis=0), 0.0)
        spread = np.where(regression, columns.std(axis=0), 1.0)
        return cls(tasks=tuple(tasks), mean=mean, scale=np.where(spread > 0, spread, 1.0))

    def scaled(self, y: np.ndarray) -> np.ndarray:
        """``y`` as the network is trained on it: (rows, targets), float32."""
        return ((_columns(y) - self.mean) / self.scale).astype(np.float32)

    def predictions(self, raw: np.ndarray) -> np.ndarray:
        """The network's raw outputs (rows, targets) as predictions: values or P(y = 1); 1-D for one target."""
        raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
        binary = np.array([task == "binary" for task in self.tasks])
        with np.errstate(over="ignore"):
            out = np.where(binary, 1 / (1 + np.exp(-raw)), raw * self.scale + self.mean)
        return out[:, 0] if len(self.tasks) == 1 else out


def _columns(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(len(y), -1)
