"""Linear adapters: FTRLProximal (elastic-net SGD) and RewardBased (Ridge weighted by reward size).

Both standardise the features on the train split (a scikit-learn pipeline, saved with joblib) and run
under ``threadpool_limits(t, "blas")``, which is what the result reports.

FTRLProximal
    ``SGDRegressor`` (squared error) or ``SGDClassifier`` (log loss) with the elastic-net penalty that
    makes it an L1-regularised online model: ``alpha`` = the profile's ``learning_rate`` (the seed's alias
    of SGD's regularisation scale, which also sets the ``optimal`` step size), ``l1_ratio`` =
    ``l1_regularization_strength``, ``learning_rate`` = ``learning_rate_schedule``, ``max_iter``, ``tol``.
    SGD's own early stopping holds out a random share of the rows, which would mix time; it is not used,
    and the fit stops on ``tol``.
RewardBased
    ``Ridge`` (``alpha``, ``max_iter``, ``tol``) fitted with sample weights ``|y| ** reward_power``
    (normalised to mean 1): large moves count more. ``max_iter`` and ``tol`` bind where scikit-learn's
    ``auto`` solver picks an iterative one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tkplan.errors import DataError
from tkplan.families._adapter import FamilyAdapter, FitResult, Params, TrainingData
from tkplan.families._threads import limited

if TYPE_CHECKING:
    from tkplan.planner._plan import Step

__all__ = ["FTRLProximalAdapter", "RewardBasedAdapter"]


class _PipelineAdapter(FamilyAdapter):
    library = "sklearn"
    model_file = "model.joblib"

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        if hasattr(model, "predict_proba"):
            return np.asarray(model.predict_proba(x)[:, 1])
        return np.asarray(model.predict(x))

    def save(self, model: Any, path: Path) -> None:
        import joblib

        joblib.dump(model, path)


class FTRLProximalAdapter(_PipelineAdapter):
    """Elastic-net SGD (see the module docstring).

    Attributes:
        losses: task → SGD loss: what the task means, not a setting.
        penalty: the SGD penalty that defines the family.
    """

    family = "ftrl_proximal"
    tasks = ("regression", "binary")
    losses: Mapping[str, str] = {"regression": "squared_error", "binary": "log_loss"}
    penalty = "elasticnet"

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        from sklearn.linear_model import SGDClassifier, SGDRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        p = Params(step)
        estimator = SGDClassifier if data.task == "binary" else SGDRegressor
        sgd = estimator(loss=self.losses[data.task], penalty=self.penalty, alpha=p["learning_rate"],
                        l1_ratio=p["l1_regularization_strength"], learning_rate=p["learning_rate_schedule"],
                        max_iter=p["max_iter"], tol=p["tol"], random_state=step.seed)
        model = make_pipeline(StandardScaler(), sgd)
        with limited(blas=step.resources.threads) as seen:
            model.fit(data.x_train, data.y_train)
        return FitResult(model=model, threads={f"sklearn.{api}": n for api, n in seen.items()}, params_used=p.used,
                         info={"epochs": int(sgd.n_iter_)})


class RewardBasedAdapter(_PipelineAdapter):
    """Ridge with sample weights ``|y| ** reward_power`` (see the module docstring)."""

    family = "reward_based"
    tasks = ("regression",)

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        p = Params(step)
        weights = np.abs(data.y_train) ** float(p["reward_power"])
        if not weights.sum() > 0:
            raise DataError("reward_based: every train target is 0, so every sample weight |y|^p is 0; "
                            "nothing to weight (set families.reward_based.reward_power: 0 for plain Ridge)")
        model = make_pipeline(StandardScaler(), Ridge(alpha=p["alpha"], max_iter=p["max_iter"], tol=p["tol"],
                                                      random_state=step.seed))
        with limited(blas=step.resources.threads) as seen:
            model.fit(data.x_train, data.y_train, ridge__sample_weight=weights / weights.mean())
        return FitResult(model=model, threads={f"sklearn.{api}": n for api, n in seen.items()}, params_used=p.used)
