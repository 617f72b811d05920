"""Held-out metrics of one step: regression and binary scores, JSON-ready (``None`` where undefined).

Regression: ``rmse``, ``mae``, ``r2`` (1 − SSE / SST around the split's own mean, so 0 is a constant
predictor that knew that mean) and ``rank_ic``. Binary: ``roc_auc`` and the ``f1``, ``precision`` and
``recall`` of the positive class, where the predicted class is the more probable one (P(y = 1) against
P(y = 0), ties to 0). Every metric dict also holds ``n``, the rows scored.

``rank_ic`` is the Spearman correlation between prediction and target: on a cross-sectional data set the
mean over timestamps of the per-timestamp correlation (timestamps where prediction or target is constant
are left out), otherwise one correlation over all rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["evaluate", "rank_ic"]


def evaluate(task: str, y: np.ndarray, pred: np.ndarray, times: np.ndarray, *, cross_sectional: bool) -> dict[str, Any]:
    """Score ``pred`` against ``y``.

    Args:
        task: ``regression`` or ``binary`` (``pred`` is then P(y = 1)).
        y: the true values (0/1 for binary).
        pred: one prediction per row.
        times: the time index of each row, for the per-timestamp rank IC.
        cross_sectional: whether timestamps hold several symbols.
    """
    from sklearn import metrics

    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if task == "binary":
        labels = y.astype(np.int64)
        chosen = np.column_stack([1 - pred, pred]).argmax(axis=1)
        auc = metrics.roc_auc_score(labels, pred) if labels.min() != labels.max() else None
        return {
            "n": len(y),
            "roc_auc": _number(auc),
            "f1": _number(metrics.f1_score(labels, chosen, zero_division=0)),
            "precision": _number(metrics.precision_score(labels, chosen, zero_division=0)),
            "recall": _number(metrics.recall_score(labels, chosen, zero_division=0)),
        }
    error = pred - y
    spread = float(np.sum((y - y.mean()) ** 2))
    return {
        "n": len(y),
        "rmse": _number(np.sqrt(np.mean(error**2))),
        "mae": _number(np.mean(np.abs(error))),
        "r2": _number(1 - float(np.sum(error**2)) / spread) if spread > 0 else None,
        "rank_ic": _number(rank_ic(y, pred, times if cross_sectional else None)),
    }


def rank_ic(y: np.ndarray, pred: np.ndarray, times: np.ndarray | None) -> float | None:
    """Spearman correlation of ``pred`` and ``y``: the mean per timestamp when ``times`` is given, else global."""
    from scipy.stats import rankdata

    def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
        a, b = a - a.mean(), b - b.mean()
        scale = math.sqrt(float(np.sum(a * a) * np.sum(b * b)))
        return float(np.sum(a * b)) / scale if scale > 0 else None

    if times is None:
        return pearson(rankdata(y), rankdata(pred))
    order = np.argsort(times, kind="stable")
    bounds = np.flatnonzero(np.diff(times[order])) + 1
    values = [pearson(rankdata(y[group]), rankdata(pred[group])) for group in np.split(order, bounds)]
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _number(value: Any) -> float | None:
    """A finite float, or ``None`` (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
