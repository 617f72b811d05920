"""Ensemble adapter: HistGradientBoosting + RandomForest + Ridge, stacked on purged out-of-fold predictions.

Members (``hgb_*``, ``rf_*``, ``ridge_alpha``) are fitted on the train split; HGB stops early on the
validation split when ``hgb_early_stop``. With ``use_stacking`` a final linear model
(``Ridge(final_estimator_alpha)``, or for a binary target ``LogisticRegression`` with
``C = 1 / final_estimator_alpha``, the same L2 strength) learns from the members' out-of-fold predictions
over ``stacking_cv`` contiguous time folds, ``purge_overlap`` timestamps purged on each side of every
held-out block; without it the members are averaged. A binary Ridge member is a ``RidgeClassifier`` whose
decision value goes through the logistic function.

Threads (seed §24.5): HGB runs with the planned ``t`` OpenMP threads; RandomForest with ``n_jobs = t``
joblib workers and OpenMP 1, so the two never multiply. The result reports what threadpoolctl and the
forest say: ``hgb.openmp``, ``rf.n_jobs``, ``rf.openmp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from tkplan.families._adapter import FamilyAdapter, FitResult, Params, TrainingData
from tkplan.families._splits import purged_folds
from tkplan.families._threads import limited

if TYPE_CHECKING:
    from tkplan.planner._plan import Step

__all__ = ["EnsembleAdapter", "StackedEnsemble"]


@attrs.frozen(eq=False)
class StackedEnsemble:
    """The fitted members and, when stacked, the final model over their outputs (saved with joblib)."""

    members: Mapping[str, Any]
    final: Any | None
    task: str

    def member_outputs(self, x: np.ndarray) -> np.ndarray:
        """One column per member: its prediction (regression) or P(y = 1) (binary)."""
        return np.column_stack([_output(model, x, self.task) for model in self.members.values()])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's prediction (regression) or P(y = 1) (binary)."""
        outputs = self.member_outputs(x)
        if self.final is None:
            return outputs.mean(axis=1)
        if self.task == "binary":
            return np.asarray(self.final.predict_proba(outputs)[:, 1])
        return np.asarray(self.final.predict(outputs))


def _output(model: Any, x: np.ndarray, task: str) -> np.ndarray:
    if task != "binary":
        return np.asarray(model.predict(x))
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x)[:, 1])
    from scipy.special import expit

    return expit(model.decision_function(x))


class EnsembleAdapter(FamilyAdapter):
    """HGB + RF + Ridge, stacked (see the module docstring)."""

    family = "ensemble"
    tasks = ("regression", "binary")
    library = "sklearn"
    model_file = "model.joblib"

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        from sklearn.base import clone
        from sklearn.ensemble import (
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
            RandomForestClassifier,
            RandomForestRegressor,
        )
        from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        p = Params(step)
        t = step.resources.threads
        binary = data.task == "binary"
        hgb_class = HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor
        rf_class = RandomForestClassifier if binary else RandomForestRegressor
        ridge_class = RidgeClassifier if binary else Ridge
        early = bool(p["hgb_early_stop"])
        members = {
            "hgb": hgb_class(max_iter=p["hgb_max_iter"], max_depth=p["hgb_max_depth"],
                             learning_rate=p["hgb_learning_rate"], max_bins=p["hgb_max_bins"],
                             l2_regularization=p["hgb_l2"], early_stopping=early, random_state=step.seed),
            "rf": rf_class(n_estimators=p["rf_n_estimators"], max_depth=p["rf_max_depth"],
                           max_samples=p["rf_max_samples"], max_features=p["rf_max_features"], n_jobs=t,
                           random_state=step.seed),
            "ridge": make_pipeline(StandardScaler(), ridge_class(alpha=p["ridge_alpha"])),
        }
        threads: dict[str, int] = {}

        def fit_member(name: str, model: Any, x: np.ndarray, y: np.ndarray) -> Any:
            model = clone(model)
            if name == "hgb":
                extra = {"X_val": data.x_val, "y_val": data.y_val} if early else {}
                with limited(openmp=t) as seen:
                    model.fit(x, y, **extra)
                threads.update({f"hgb.{api}": n for api, n in seen.items()})
            elif name == "rf":
                with limited(openmp=1) as seen:
                    model.fit(x, y)
                threads.update({f"rf.{api}": n for api, n in seen.items()})
                threads["rf.n_jobs"] = int(model.get_params()["n_jobs"])
            else:
                model.fit(x, y)
            return model

        final = None
        stacked = bool(p["use_stacking"])
        n_folds, purge = int(p["stacking_cv"]), int(p["purge_overlap"])
        folds = list(purged_folds(data.t_train, n_folds, purge)) if stacked else []
        if stacked:
            oof = np.zeros((len(data.y_train), len(members)))
            for train_rows, held_rows in folds:
                x, y = data.x_train[train_rows], data.y_train[train_rows]
                part = StackedEnsemble({name: fit_member(name, model, x, y) for name, model in members.items()},
                                       None, data.task)
                oof[held_rows] = part.member_outputs(data.x_train[held_rows])
            alpha = float(p["final_estimator_alpha"])
            final = (LogisticRegression(C=1 / alpha, random_state=step.seed) if binary else Ridge(alpha=alpha))
            final.fit(oof, data.y_train)
        fitted = {name: fit_member(name, model, data.x_train, data.y_train) for name, model in members.items()}
        info: dict[str, Any] = {"stacked": stacked, "folds": len(folds),
                                "hgb_iterations": int(fitted["hgb"].n_iter_)}
        if final is not None:
            info["final_weights"] = dict(zip(members, np.ravel(final.coef_).astype(float).tolist(), strict=True))
        return FitResult(model=StackedEnsemble(fitted, final, data.task), threads=threads, params_used=p.used,
                         info=info)

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        return model.predict(x)

    def save(self, model: Any, path: Path) -> None:
        import joblib

        joblib.dump(model, path)
