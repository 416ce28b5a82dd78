"""Predictors built on scikit-learn (plus the uniform random baseline).

- ``random``: U[0, 1) per row from ``numpy.random.default_rng(seed)``, independent of the input
  (the paper's RE baseline). The generator state is saved, so a loaded copy continues the stream.
- ``rf``: ``RandomForestRegressor`` with scikit-learn defaults (100 trees, squared error,
  ``max_features=1.0``, bootstrap), ``random_state=seed``.
- ``mlp``: ``MLPRegressor(hidden_layer_sizes=(90, 180, 180), learning_rate_init=0.01,
  max_iter=1000)``. Two deliberate departures from the original (seed_system §6.5): it is seeded
  (``random_state=seed``; the original was not, so its runs were not repeatable), and the inputs are
  standardised (``standardise=True``): GRAF counts and zero-cost proxies span many orders of
  magnitude and an unscaled MLP on them mostly learns the largest column. Set ``standardise=False``
  for the original's behaviour.
- ``linear`` / ``ridge``: ``LinearRegression`` / ``Ridge(alpha=1.0)``, unscaled by default as in
  ``ensemble_mix``.

The MLP and linear models impute NaN features with the training median (the tree models take NaN
natively). Their BLAS calls are limited to ``n_jobs`` threads with threadpoolctl.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from surrogates.predictors.base import Predictor, RefitOnLoad, register

__all__ = ["RandomPredictor", "RandomForestPredictor", "MLPPredictor", "LinearPredictor", "RidgePredictor"]


@register("random")
class RandomPredictor(Predictor):
    """Uniform [0, 1) scores from a seeded generator; needs no fit and ignores the features.

    The search's ``surrogate=random`` (the paper's RE baseline) is this predictor without an encoder
    (``nas.search.surrogate.RandomSurrogate``)."""

    needs_fit = False
    input_independent = True

    def __init__(self, seed: int = 0, n_jobs: int = 1):
        super().__init__(seed=seed, n_jobs=n_jobs)
        self._rng = np.random.default_rng(self.seed)

    def _fit(self, X, y):
        return None

    def _predict(self, X):
        return self._rng.random(X.shape[0])

    def state_dict(self):
        return {"bit_generator": self._rng.bit_generator.state}

    def load_state_dict(self, state):
        if "bit_generator" in state:
            self._rng.bit_generator.state = state["bit_generator"]

    def _save_model(self, directory):
        return None  # the generator state lives in predictor.json

    def _load_model(self, directory):
        return None


@register("rf")
class RandomForestPredictor(RefitOnLoad, Predictor):
    """sklearn ``RandomForestRegressor(random_state=seed, n_jobs=n_jobs, **params)``."""

    def __init__(self, seed: int = 0, n_jobs: int = 1, **rf_params: Any):
        super().__init__(seed=seed, n_jobs=n_jobs, **rf_params)

    def _make(self) -> RandomForestRegressor:
        return RandomForestRegressor(random_state=self.seed, n_jobs=self.n_jobs, **self.params)

    def _fit_arrays(self, X, y):
        self.model = self._make().fit(X, y)

    def _predict(self, X):
        return self.model.predict(X)


class _PipelinePredictor(RefitOnLoad, Predictor):
    """Median imputation, optional standardisation, then a BLAS-heavy sklearn estimator."""

    def _estimator(self):
        raise NotImplementedError

    def _fit_arrays(self, X, y):
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if self.params.get("standardise", False):
            steps.append(("scale", StandardScaler()))
        steps.append(("model", self._estimator()))
        with threadpool_limits(limits=self.n_jobs), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model = Pipeline(steps).fit(X, y)

    def _predict(self, X):
        with threadpool_limits(limits=self.n_jobs):
            return self.model.predict(X)


@register("mlp")
class MLPPredictor(_PipelinePredictor):
    """``MLPRegressor`` (seeded) behind median imputation and, by default, standardisation."""

    def __init__(
        self,
        seed: int = 0,
        n_jobs: int = 1,
        hidden_layer_sizes: tuple[int, ...] | list[int] = (90, 180, 180),
        learning_rate_init: float = 0.01,
        max_iter: int = 1000,
        standardise: bool = True,
        **mlp_params: Any,
    ):
        super().__init__(
            seed=seed,
            n_jobs=n_jobs,
            hidden_layer_sizes=[int(h) for h in hidden_layer_sizes],
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            standardise=standardise,
            **mlp_params,
        )

    def _estimator(self):
        kw = {k: v for k, v in self.params.items() if k != "standardise"}
        kw["hidden_layer_sizes"] = tuple(kw["hidden_layer_sizes"])
        return MLPRegressor(random_state=self.seed, **kw)


@register("linear")
class LinearPredictor(_PipelinePredictor):
    """Ordinary least squares (``LinearRegression``); a member of ``ensemble_mix``."""

    def __init__(self, seed: int = 0, n_jobs: int = 1, standardise: bool = False, **params: Any):
        super().__init__(seed=seed, n_jobs=n_jobs, standardise=standardise, **params)

    def _estimator(self):
        return LinearRegression(**{k: v for k, v in self.params.items() if k != "standardise"})


@register("ridge")
class RidgePredictor(_PipelinePredictor):
    """``Ridge(alpha=1.0)``; a member of ``ensemble_mix``."""

    def __init__(
        self, seed: int = 0, n_jobs: int = 1, alpha: float = 1.0, standardise: bool = False, **params: Any
    ):
        super().__init__(seed=seed, n_jobs=n_jobs, alpha=alpha, standardise=standardise, **params)

    def _estimator(self):
        kw = {k: v for k, v in self.params.items() if k != "standardise"}
        return Ridge(random_state=self.seed, **kw)
