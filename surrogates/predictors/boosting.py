"""Gradient-boosted trees: XGBoost and LightGBM, saved in their own model formats.

- ``xgb``: ``XGBRegressor`` with library defaults, ``random_state=seed``.
- ``xgb_tuned``: the transfer scripts' XGBoost (seed_system §6.5, §8.2): ``tree_method="hist"``,
  ``subsample=0.9``, ``n_estimators=10000``, ``learning_rate=0.01``. Slow: ten thousand trees per
  fit (see ``bench/predictors.py``).
- ``lgbm``: ``LGBMRegressor`` with library defaults, ``random_state=seed``, ``verbose=-1``.

Every extra keyword goes to the library's constructor. Inputs reach the libraries as plain
float arrays (the column names are checked by ``Predictor``), so the saved model files carry no
feature names of their own.
"""
from __future__ import annotations

from typing import Any

import lightgbm
import xgboost

from surrogates.predictors.base import Predictor, register

__all__ = ["XGBPredictor", "XGBTunedPredictor", "LGBMPredictor"]


@register("xgb")
class XGBPredictor(Predictor):
    """``xgboost.XGBRegressor(random_state=seed, n_jobs=n_jobs, **params)``; ``model.json`` on disk."""

    MODEL_FILE = "model.json"

    def __init__(self, seed: int = 0, n_jobs: int = 1, **xgb_params: Any):
        super().__init__(seed=seed, n_jobs=n_jobs, **xgb_params)

    def _make(self) -> xgboost.XGBRegressor:
        return xgboost.XGBRegressor(random_state=self.seed, n_jobs=self.n_jobs, **self.params)

    def _fit(self, X, y):
        self.model = self._make().fit(X, y)

    def _predict(self, X):
        return self.model.predict(X)

    def _save_model(self, directory):
        self.model.save_model(directory / self.MODEL_FILE)

    def _load_model(self, directory):
        self.model = self._make()
        self.model.load_model(directory / self.MODEL_FILE)


@register("xgb_tuned")
class XGBTunedPredictor(XGBPredictor):
    """XGBoost with the transfer scripts' hyperparameters (10,000 trees at learning rate 0.01)."""

    def __init__(
        self,
        seed: int = 0,
        n_jobs: int = 1,
        tree_method: str = "hist",
        subsample: float = 0.9,
        n_estimators: int = 10000,
        learning_rate: float = 0.01,
        **xgb_params: Any,
    ):
        super().__init__(
            seed=seed,
            n_jobs=n_jobs,
            tree_method=tree_method,
            subsample=subsample,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            **xgb_params,
        )


@register("lgbm")
class LGBMPredictor(Predictor):
    """``lightgbm.LGBMRegressor(random_state=seed, n_jobs=n_jobs, verbose=-1, **params)``.

    Predictions always go through the fitted ``Booster`` (what ``LGBMRegressor.predict`` calls), so
    a booster read back from ``model.txt`` predicts exactly like the one that was fitted.
    """

    MODEL_FILE = "model.txt"

    def __init__(self, seed: int = 0, n_jobs: int = 1, verbose: int = -1, **lgbm_params: Any):
        super().__init__(seed=seed, n_jobs=n_jobs, verbose=verbose, **lgbm_params)

    def _fit(self, X, y):
        model = lightgbm.LGBMRegressor(random_state=self.seed, n_jobs=self.n_jobs, **self.params)
        self.booster = model.fit(X, y).booster_

    def _predict(self, X):
        return self.booster.predict(X, num_threads=self.n_jobs)

    def _save_model(self, directory):
        self.booster.save_model(str(directory / self.MODEL_FILE))

    def _load_model(self, directory):
        self.booster = lightgbm.Booster(model_file=str(directory / self.MODEL_FILE))
