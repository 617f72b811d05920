"""Gradient-boosted tree adapters: LightGBM, QuantileLightGBM and XGBoost, through their native APIs.

Each profile key goes to the library under the name in the adapter's ``names`` table; the objective follows
from the task; early stopping watches the validation split; the planned thread count is passed as
``num_threads`` (LightGBM) or ``nthread`` (XGBoost) and read back from the trained booster. Every ``log_every``
rounds the validation loss is logged to the step's ``epochs.jsonl`` (``log_epoch``: the round as the epoch, the
boosting rounds as the epochs), where the live display and ``tkplan tune``'s pruner read it while the step runs;
a step whose trial was pruned stops boosting at its next logged round (``stop_requested``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tkplan.families._adapter import FamilyAdapter, FitResult, Params, TrainingData
from tkplan.runtime._context import log_epoch, stop_requested

if TYPE_CHECKING:
    from tkplan.planner._plan import Step

__all__ = ["LightGBMAdapter", "QuantileLightGBMAdapter", "XGBoostAdapter"]


class LightGBMAdapter(FamilyAdapter):
    """LightGBM (``lightgbm.train``), regression (L2) or binary (log loss); model saved as LightGBM text.

    Attributes:
        names: profile key → LightGBM parameter name (``n_estimators`` and ``early_stopping_rounds`` are
            the boosting rounds and the early-stopping patience, passed separately).
        objectives: task → LightGBM objective.
    """

    family = "lightgbm"
    tasks: tuple[str, ...] = ("regression", "binary")
    library = "lightgbm"
    model_file = "model.txt"
    names: Mapping[str, str] = {
        "num_leaves": "num_leaves", "max_depth": "max_depth", "min_data_in_leaf": "min_data_in_leaf",
        "min_child_weight": "min_child_weight", "feature_fraction": "feature_fraction",
        "bagging_fraction": "bagging_fraction", "bagging_freq": "bagging_freq", "lambda_l1": "lambda_l1",
        "lambda_l2": "lambda_l2", "learning_rate": "learning_rate", "early_stopping_rounds": "early_stopping_round",
    }
    objectives: Mapping[str, str] = {"regression": "regression", "binary": "binary"}

    def objective(self, p: Params, task: str) -> dict[str, Any]:
        """The objective and its parameters for ``task``."""
        return {"objective": self.objectives[task]}

    def callbacks(self, p: Params) -> list[Callable[..., None]]:
        """Extra ``lightgbm.train`` callbacks (none here)."""
        return []

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        import lightgbm as lgb

        p = Params(step)
        threads = step.resources.threads
        params = {name: p[key] for key, name in self.names.items()}
        params.update(self.objective(p, data.task))
        params.update({"num_threads": threads, "seed": step.seed, "verbosity": -1})
        train = lgb.Dataset(data.x_train, label=data.y_train, feature_name=list(data.feature_names))
        val = lgb.Dataset(data.x_val, label=data.y_val, reference=train)
        rounds = p["n_estimators"]
        logged = _logged_rounds(data.work_dir, p["log_every"], rounds)
        booster = lgb.train(params, train, num_boost_round=rounds, valid_sets=[val],
                            callbacks=[*self.callbacks(p), *([_lightgbm_log(logged)] if logged else [])])
        return FitResult(
            model=booster,
            threads={"lightgbm.num_threads": int(booster.params["num_threads"])},
            params_used=p.used,
            info={"best_iteration": int(booster.best_iteration), "trees": int(booster.num_trees())},
        )

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(x))

    def save(self, model: Any, path: Path) -> None:
        model.save_model(str(path))


class QuantileLightGBMAdapter(LightGBMAdapter):
    """LightGBM with the quantile objective at ``alpha`` (regression only), within ``time_budget_sec``.

    When the wall-clock budget of the fit is spent, boosting stops and the model keeps the trees built.
    """

    family = "quantile_lightgbm"
    tasks = ("regression",)
    names: Mapping[str, str] = {
        **{key: name for key, name in LightGBMAdapter.names.items() if key != "min_child_weight"},
        "max_bin": "max_bin",
    }

    def objective(self, p: Params, task: str) -> dict[str, Any]:
        return {"objective": "quantile", "alpha": p["alpha"]}

    def callbacks(self, p: Params) -> list[Callable[..., None]]:
        return [_time_budget(float(p["time_budget_sec"]))]


def _time_budget(seconds: float) -> Callable[..., None]:
    """A LightGBM callback that stops boosting once ``seconds`` of wall-clock time have passed."""
    import lightgbm as lgb

    start = time.monotonic()

    def stop_when_spent(env: Any) -> None:
        if time.monotonic() - start > seconds:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    return stop_when_spent


class XGBoostAdapter(FamilyAdapter):
    """XGBoost (``xgboost.train``), squared error or logistic; model saved as XGBoost JSON.

    Attributes:
        names: profile key → XGBoost parameter name.
        objectives: task → XGBoost objective.
    """

    family = "xgboost"
    tasks = ("regression", "binary")
    library = "xgboost"
    model_file = "model.json"
    names: Mapping[str, str] = {
        "max_depth": "max_depth", "min_child_weight": "min_child_weight", "subsample": "subsample",
        "colsample_bytree": "colsample_bytree", "gamma": "gamma", "reg_alpha": "alpha", "reg_lambda": "lambda",
        "learning_rate": "eta",
    }
    objectives: Mapping[str, str] = {"regression": "reg:squarederror", "binary": "binary:logistic"}

    def fit(self, data: TrainingData, step: Step) -> FitResult:
        import xgboost as xgb

        p = Params(step)
        threads = step.resources.threads
        params = {name: p[key] for key, name in self.names.items()}
        params.update({"objective": self.objectives[data.task], "nthread": threads, "seed": step.seed,
                       "verbosity": 0})
        names = list(data.feature_names)
        train = xgb.DMatrix(data.x_train, label=data.y_train, feature_names=names, nthread=threads)
        val = xgb.DMatrix(data.x_val, label=data.y_val, feature_names=names, nthread=threads)
        rounds = p["n_estimators"]
        logged = _logged_rounds(data.work_dir, p["log_every"], rounds)
        booster = xgb.train(params, train, num_boost_round=rounds, evals=[(val, "val")],
                            early_stopping_rounds=p["early_stopping_rounds"], verbose_eval=False,
                            callbacks=[_xgboost_log(logged)] if logged else None)
        told = json.loads(booster.save_config())["learner"]["generic_param"]["nthread"]
        return FitResult(
            model=booster,
            threads={"xgboost.nthread": int(told)},
            params_used=p.used,
            info={"best_iteration": int(booster.best_iteration), "rounds": int(booster.num_boosted_rounds())},
        )

    def predict(self, model: Any, x: np.ndarray, times: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        matrix = xgb.DMatrix(x, feature_names=model.feature_names)
        return np.asarray(model.predict(matrix, iteration_range=(0, model.best_iteration + 1)))

    def save(self, model: Any, path: Path) -> None:
        model.save_model(str(path))


LogRound = Callable[[int, str, float], bool]
"""``log(round, metric, value)``: one boosting round's validation loss, logged; true when training must stop."""


def _logged_rounds(work_dir: Path | None, every: int, rounds: int) -> LogRound | None:
    """A logger of every ``every``-th round (and the last) to ``work_dir``'s ``epochs.jsonl``, or ``None``; at each
    logged round it says whether the step was asked to stop (``tkplan tune`` pruned its trial)."""
    if work_dir is None or every <= 0:
        return None

    def log(round_: int, metric: str, value: float) -> bool:
        if round_ % every == 0 or round_ == rounds:
            log_epoch(work_dir, round_, rounds, val_loss=round(float(value), 8), metric=metric)
            return stop_requested(work_dir)
        return False

    return log


def _lightgbm_log(log: LogRound) -> Callable[..., None]:
    """A ``lightgbm.train`` callback that hands each round's first validation metric to ``log``, and stops
    boosting when told to."""
    import lightgbm as lgb

    def after_round(env: Any) -> None:
        if env.evaluation_result_list:
            _data, metric, value, _higher_better = env.evaluation_result_list[0][:4]
            if log(env.iteration + 1, str(metric), float(value)):
                raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    return after_round


def _xgboost_log(log: LogRound) -> Any:
    """An ``xgboost.train`` callback that hands each round's validation metric to ``log``, and stops when told to."""
    import xgboost as xgb

    class LogRounds(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            for metric, values in (evals_log.get("val") or {}).items():
                return log(epoch + 1, str(metric), float(values[-1]))
            return False

    return LogRounds()
