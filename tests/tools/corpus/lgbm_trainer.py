"""LightGBM trainer of the pricing team: the old style, defaults filled in with setdefault."""

import logging

import lightgbm as lgb
import numpy as np

log = logging.getLogger(__name__)

OBJECTIVE = "regression_l1"
BLAS_THREADS_DEFAULT = 1
MODEL_FILE = "model.txt"


class LGBMTrainer:
    """Fits one LightGBM model per target."""

    def __init__(self, config):
        self.cfg = dict(config)
        self.cfg.setdefault("num_leaves", 63)
        self.cfg.setdefault("learning_rate", 0.05)
        self.cfg.setdefault("subsample_freq", 1)
        self.cfg.setdefault("min_data_in_leaf", 20)
        self.cfg.setdefault("feature_fraction", 0.8)
        self.cfg.setdefault("early_stopping_rounds", None)
        self.cfg.setdefault("history", [])
        self.max_leaves = self.cfg.get("max_leaves", -1)
        self.max_depth = self.cfg.get("max_depth", -1)
        self.seed = self.cfg.get("seed", 0)
        self.name = self.cfg.get("name", "lgbm")
        self.notes = self.cfg.get("notes", "")

    def params(self):
        return {
            "objective": OBJECTIVE,
            "num_leaves": self.cfg["num_leaves"],
            "learning_rate": self.cfg["learning_rate"],
            "bagging_fraction": 0.9,
            "bagging_freq": self.cfg["subsample_freq"],
            "lambda_l2": 1.0,
            "verbose": -1,
            "seed": self.seed,
        }

    def fit(self, x, y, x_val, y_val):
        log.info("fitting on %d rows", len(x))
        train = lgb.Dataset(x, label=y, free_raw_data=False)
        valid = lgb.Dataset(x_val, label=y_val, reference=train)
        booster = lgb.train(
            self.params(),
            train,
            num_boost_round=2000,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(100), lgb.log_evaluation(0)],
        )
        preds = booster.predict(x_val)
        rmse = float(np.sqrt(np.mean((preds - y_val) ** 2)))
        if rmse > 0.25:
            log.warning("validation rmse %.4f is high", rmse)
        booster.save_model(MODEL_FILE)
        return booster

    def summary(self, booster):
        names = booster.feature_name()
        gains = booster.feature_importance(importance_type="gain")
        order = np.argsort(gains)[::-1]
        return [(names[i], round(float(gains[i]), 2)) for i in order[:10]]
