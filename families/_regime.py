"""Regime adapters: GMMRegime (a Gaussian mixture, a Ridge per regime) and ChangePoint (KMeans over time).

Both standardise the features on the train split, fit Ridge models with ``ridge_alpha`` and
``ridge_solver`` (``lsqr`` for these MKL-risky families, seed §19.2), and give the planned ``t`` threads to
both BLAS (the Ridge and mixture algebra) and OpenMP: scikit-learn's KMeans — ChangePoint's clustering and
GaussianMixture's initialisation — runs its Lloyd iterations on OpenMP threads (BLAS held at 1 inside), so a
BLAS limit alone would leave it on the environment's OpenMP count (seed §24.4: the thread count applies to
KMeans and Ridge). The result reports both pools as threadpoolctl sees them.

GMMRegime
    A ``GaussianMixture`` (``n_components``, ``covariance_type``, ``reg_covar``, ``max_iter``) over the
    features gives each row its regime probabilities; regime ``k``'s Ridge is fitted with those
    probabilities as sample weights, and a prediction is the probability-weighted sum of the regimes' Ridges.
ChangePoint
    The market state of a timestamp is the mean of its rows' standardised features (the row itself when a
    timestamp has one row). ``KMeans`` with ``n_regimes`` clusters labels the train timestamps; a change
    point is where the label changes from one timestamp to the next. Each regime's Ridge is fitted on its
    rows; a new timestamp takes the regime of the nearest cluster centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from tkplan.families._adapter import FamilyAdapter, FitResult, Params, TrainingData
from tkplan.families._threads import limited

if TYPE_CHECKING:
    from tkplan.planner._plan import Step

__all__ = ["ChangePointAdapter", "GMMRegimeAdapter", "RegimeModel"]


@attrs.frozen(eq=False)
class RegimeModel:
    """A scaler, a regime model (``GaussianMixture`` or ``KMeans``) and one Ridge per regime (saved with joblib)."""

    scaler: Any
    regimes: Any
    ridges: Sequence[Any]
    kind: str

    def predict(self, x: np.ndarray, times: np.ndarray) -> np.ndarray:
        """The prediction for each row of ``x``, at the time index ``times``."""
        xs = self.scaler.transform(x)
        each = np.column_stack([r.predict(xs) for r in self.ridges])
        if self.kind == "gmm":
            return np.sum(self.regimes.predict_proba(xs) * each, axis=1)
        labels = _row_labels(self.regimes, xs, times)
        return each[np.arange(len(xs)), labels]


def _states(xs: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean standardised feature vector of each timestamp, and each row's timestamp position."""
    stamps, position = np.unique(times, return_inverse=True)
    sums = np.zeros((len(stamps), xs.shape[1]))
    np.add.at(sums, position, xs)
    return sums / np.bincount(position)[:, None], position


def _row_labels(kmeans: Any, xs: np.ndarray, times: np.ndarray) -> np.ndarray:
    states, position = _states(xs, times)
    return kmeans.predict(states)[position]


class _RegimeAdapter(FamilyAdapter):
    tasks = ("regression",)
    library = "sklearn"
    model_file = "model.joblib"

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        return model.predict(x, times)

    def save(self, model: Any, path: Path) -> None:
        import joblib

        joblib.dump(model, path)


class GMMRegimeAdapter(_RegimeAdapter):
    """Gaussian-mixture regimes with a probability-weighted Ridge per regime."""

    family = "gmm_regime"

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        from sklearn.linear_model import Ridge
        from sklearn.mixture import GaussianMixture
        from sklearn.preprocessing import StandardScaler

        p = Params(step)
        scaler = StandardScaler().fit(data.x_train)
        xs = scaler.transform(data.x_train)
        gmm = GaussianMixture(n_components=p["n_components"], covariance_type=p["covariance_type"],
                              reg_covar=p["reg_covar"], max_iter=p["max_iter"], random_state=step.seed)
        with limited(openmp=step.resources.threads, blas=step.resources.threads) as seen:
            weights = gmm.fit(xs).predict_proba(xs)
            ridges = []
            for k in range(weights.shape[1]):
                ridge = Ridge(alpha=p["ridge_alpha"], solver=p["ridge_solver"], random_state=step.seed)
                w = weights[:, k]
                ridges.append(ridge.fit(xs, data.y_train, sample_weight=w if w.any() else None))
        return FitResult(
            model=RegimeModel(scaler, gmm, tuple(ridges), "gmm"),
            threads={f"sklearn.{api}": n for api, n in seen.items()},
            params_used=p.used,
            info={"converged": bool(gmm.converged_), "regime_share": weights.mean(axis=0).tolist()},
        )


class ChangePointAdapter(_RegimeAdapter):
    """KMeans regimes of the market state over time, with a Ridge per regime."""

    family = "change_point"

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        from sklearn.cluster import KMeans
        from sklearn.linear_model import Ridge
        from sklearn.preprocessing import StandardScaler

        p = Params(step)
        scaler = StandardScaler().fit(data.x_train)
        xs = scaler.transform(data.x_train)
        states, position = _states(xs, data.t_train)
        kmeans = KMeans(n_clusters=p["n_regimes"], random_state=step.seed)
        with limited(openmp=step.resources.threads, blas=step.resources.threads) as seen:
            labels = kmeans.fit(states).labels_
            rows = labels[position]
            ridges = tuple(
                Ridge(alpha=p["ridge_alpha"], solver=p["ridge_solver"], random_state=step.seed)
                .fit(xs[rows == k], data.y_train[rows == k])
                for k in range(kmeans.n_clusters)
            )
        return FitResult(
            model=RegimeModel(scaler, kmeans, ridges, "kmeans"),
            threads={f"sklearn.{api}": n for api, n in seen.items()},
            params_used=p.used,
            info={"change_points": int(np.count_nonzero(np.diff(labels))),
                  "regime_rows": np.bincount(rows, minlength=kmeans.n_clusters).tolist()},
        )
