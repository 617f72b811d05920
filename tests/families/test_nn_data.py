"""The network families' inputs: per-symbol lookback windows inside one split, feature and target scaling."""

from __future__ import annotations

import numpy as np
import pytest

from tkplan.families._nn_data import Standardiser, Targets, window_index


class TestWindowIndex:
    """Each row's window holds the same symbol's latest rows, oldest first, padded where history is short."""

    # Two symbols interleaved by time, as a split's rows are ordered (time, then symbol).
    symbols = np.array([0, 1, 0, 1, 0, 1, 0])
    times = np.array([10, 10, 11, 11, 12, 12, 13])

    def test_windows_follow_each_symbol_back_in_time(self):
        index = window_index(self.symbols, self.times, 3)
        pad = len(self.symbols)
        assert index.tolist() == [
            [pad, pad, 0], [pad, pad, 1],
            [pad, 0, 2], [pad, 1, 3],
            [0, 2, 4], [1, 3, 5],
            [2, 4, 6],
        ]

    def test_a_window_never_leaves_the_rows_it_is_given(self):
        """Built per split, a window of a split's first rows is padding, never rows of an earlier split."""
        val_symbols, val_times = self.symbols[4:], self.times[4:]
        index = window_index(val_symbols, val_times, 3)
        assert index.max() == len(val_symbols)  # the padding row, one past the split's rows
        assert index[:, -1].tolist() == [0, 1, 2]

    def test_padding_points_at_the_standardisers_zero_row(self):
        x = np.arange(14, dtype=np.float32).reshape(7, 2)
        padded = Standardiser.fit(x).padded(x)
        windows = padded[window_index(self.symbols, self.times, 2)]
        assert windows.shape == (7, 2, 2)
        assert np.all(windows[0, 0] == 0)  # no history: the train mean, once standardised
        assert np.allclose(windows[2, 0], padded[0])

    def test_no_rows(self):
        assert window_index(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 4).shape == (0, 4)


class TestTargets:
    def test_regression_is_standardised_and_mapped_back(self):
        y = np.array([1.0, 2.0, 3.0, 6.0])
        targets = Targets.fit(y, ("regression",))
        scaled = targets.scaled(y)
        assert scaled.shape == (4, 1)
        assert scaled.mean() == pytest.approx(0, abs=1e-6) and scaled.std() == pytest.approx(1, abs=1e-6)
        assert targets.predictions(scaled) == pytest.approx(y)

    def test_binary_trains_on_labels_and_predicts_probabilities(self):
        targets = Targets.fit(np.array([0.0, 1.0, 1.0]), ("binary",))
        assert targets.scaled(np.array([0.0, 1.0])).ravel().tolist() == [0.0, 1.0]
        assert targets.predictions(np.array([[0.0], [100.0], [-100.0]])) == pytest.approx([0.5, 1.0, 0.0])

    def test_several_targets_keep_a_column_each(self):
        y = np.array([[1.0, 0.0], [3.0, 1.0]])
        targets = Targets.fit(y, ("regression", "binary"))
        assert targets.predictions(targets.scaled(y)).tolist() == [[1.0, 0.5], [3.0, pytest.approx(0.7310585786)]]

    def test_a_constant_target_is_only_centred(self):
        targets = Targets.fit(np.array([2.0, 2.0]), ("regression",))
        assert targets.scaled(np.array([2.0, 3.0])).ravel().tolist() == [0.0, 1.0]
