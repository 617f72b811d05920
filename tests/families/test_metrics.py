"""Held-out metrics: whole values on small hand-checked inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tkplan.families import evaluate, rank_ic


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 4.0, 3.0])
    assert evaluate("regression", y, pred, np.zeros(4), cross_sectional=False) == {
        "n": 4, "rmse": pytest.approx(np.sqrt(0.5)), "mae": 0.5, "r2": 0.6, "rank_ic": pytest.approx(0.8)}


def test_binary_metrics_take_the_more_probable_class():
    """P(y = 1) of 0.6 predicts 1, of 0.4 predicts 0; AUC ranks the probabilities."""
    y = np.array([0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    assert evaluate("binary", y, prob, np.zeros(5), cross_sectional=False) == {
        "n": 5, "roc_auc": pytest.approx(5 / 6), "f1": pytest.approx(2 / 3), "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3)}


def test_undefined_metrics_are_none():
    """A constant target has no R², a single class no AUC: None, not NaN (plans and reports are JSON)."""
    assert evaluate("regression", np.ones(3), np.arange(3.0), np.zeros(3), cross_sectional=False)["r2"] is None
    assert evaluate("binary", np.ones(3), np.full(3, 0.7), np.zeros(3), cross_sectional=False)["roc_auc"] is None


def test_rank_ic_per_timestamp():
    """Cross-sectional rank IC is the mean of the per-timestamp Spearman correlations."""
    times = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    pred = np.array([10.0, 20.0, 30.0, 30.0, 20.0, 10.0])
    assert rank_ic(y, pred, times) == 0.0
    assert rank_ic(y, pred, None) == pytest.approx(0.0)
    assert rank_ic(y[:3], pred[:3], times[:3]) == pytest.approx(1.0)
