"""NGBoost adapter: natural-gradient boosting (Normal for regression, Bernoulli for binary).

Features are robust-scaled on the train split and clipped to ± ``clip`` (the seed trainer's clipper); the
boosting loop stops early on the validation split. The base learner is NGBoost's own default tree, seeded
with the step's seed: NGBoost leaves it unseeded, so two fits of one step would differ in their last bits.
NGBoost's work is numpy linear algebra, so the planned threads go to BLAS (``threadpool_limits(t, "blas")``),
which is what the result reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from tkplan.families._adapter import FamilyAdapter, FitResult, Params, TrainingData
from tkplan.families._threads import limited

if TYPE_CHECKING:
    from tkplan.planner._plan import Step

__all__ = ["ClippedNGBoost", "NGBoostAdapter"]


@attrs.frozen(eq=False)
class ClippedNGBoost:
    """A fitted NGBoost model with the scaling and clipping its inputs need (saved with joblib)."""

    scaler: Any
    clip: float
    model: Any
    task: str
    iterations: int | None = None
    """Boosting iterations to predict with: the best on the validation split (``None``: all)."""

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """``x`` robust-scaled and clipped to ± ``clip``."""
        return np.clip(self.scaler.transform(x), -self.clip, self.clip)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The predicted mean (regression) or P(y = 1) (binary)."""
        if self.task == "binary":
            return np.asarray(self.model.predict_proba(self.inputs(x), max_iter=self.iterations)[:, 1])
        return np.asarray(self.model.predict(self.inputs(x), max_iter=self.iterations))


class NGBoostAdapter(FamilyAdapter):
    """NGBoost with ``n_estimators``, ``learning_rate``, ``col_sample``, ``clip`` and early stopping."""

    family = "ngboost"
    tasks = ("regression", "binary")
    library = "ngboost"
    model_file = "model.joblib"

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        from ngboost import NGBClassifier, NGBRegressor
        from ngboost.distns import Bernoulli, Normal
        from ngboost.learners import default_tree_learner
        from sklearn.base import clone
        from sklearn.preprocessing import RobustScaler

        p = Params(step)
        binary = data.task == "binary"
        estimator, dist = (NGBClassifier, Bernoulli) if binary else (NGBRegressor, Normal)
        base = clone(default_tree_learner).set_params(random_state=step.seed)
        model = estimator(Dist=dist, Base=base, n_estimators=p["n_estimators"], learning_rate=p["learning_rate"],
                          col_sample=p["col_sample"], random_state=step.seed, verbose=False)
        scaled = ClippedNGBoost(RobustScaler().fit(data.x_train), float(p["clip"]), model, data.task)
        y_train, y_val = data.y_train, data.y_val
        if binary:
            y_train, y_val = y_train.astype(np.int64), y_val.astype(np.int64)
        with limited(blas=step.resources.threads) as seen:
            model.fit(scaled.inputs(data.x_train), y_train, X_val=scaled.inputs(data.x_val), Y_val=y_val,
                      early_stopping_rounds=p["early_stopping_rounds"])
        best = model.best_val_loss_itr
        return FitResult(
            model=attrs.evolve(scaled, iterations=None if best is None else int(best) + 1),
            threads={f"ngboost.{api}": n for api, n in seen.items()},
            params_used=p.used,
            info={"best_iteration": None if best is None else int(best), "iterations": len(model.base_models)},
        )

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        return model.predict(x)

    def save(self, model: Any, path: Path) -> None:
        import joblib

        joblib.dump(model, path)

