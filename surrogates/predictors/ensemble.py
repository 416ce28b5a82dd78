"""Averaging ensembles (the original's ``BaggingEnsemble``, which does no bagging: every member is
fitted on all the rows and the prediction is the plain mean of the members').

- ``ensemble_xgb``: XGBoost over the grid ``max_depth`` {5, 9, 3} x ``n_estimators`` {200, 500, 800}
  x ``learning_rate`` {0.01, 0.1, 0.1, 1.0}, ``eval_metric="rmse"`` (seed_system §6.5).
- ``ensemble_lgbm``: the same grid with LightGBM and learning rates {0.01, 0.1, 0.001, 1.0}.
- ``ensemble_mix``: 11 members: XGB(default), XGB(500 trees, depth 5, lr 0.01), XGB(800, 3, 0.1),
  XGB(200, 9, 1.0), the same four with LightGBM, LinearRegression, Ridge, RF(400 trees, depth 5).

The duplicated 0.1 in the XGBoost grid. The original lists 0.1 twice, so its ensemble has 36
members (its ``ensemble_lengths`` says 27). We keep it (``keep_duplicates=True``) to reproduce the
published ensemble: with the default (deterministic) member settings and one seed the two copies
are the same model, i.e. the lr=0.1 members count twice in the mean. Such identical members are
fitted once and weighted by their count, which predicts what the 36 separate fits would (up to
float summation order) for three quarters of the work. ``keep_duplicates=False`` gives the 27
distinct members with equal weights.

All members get the ensemble's seed and ``n_jobs``. The grid lists are constructor arguments, so a
test or a quick run can shrink them (e.g. ``n_estimators=(5, 10)``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surrogates.predictors.base import Predictor, create_predictor, register

__all__ = ["EnsemblePredictor", "XGBEnsemble", "LGBMEnsemble", "MixEnsemble", "MIX_MEMBERS"]

MemberSpec = tuple[str, dict[str, Any]]

MIX_MEMBERS: list[MemberSpec] = [
    ("xgb", {}),
    ("xgb", {"n_estimators": 500, "max_depth": 5, "learning_rate": 0.01}),
    ("xgb", {"n_estimators": 800, "max_depth": 3, "learning_rate": 0.1}),
    ("xgb", {"n_estimators": 200, "max_depth": 9, "learning_rate": 1.0}),
    ("lgbm", {}),
    ("lgbm", {"n_estimators": 500, "max_depth": 5, "learning_rate": 0.01}),
    ("lgbm", {"n_estimators": 800, "max_depth": 3, "learning_rate": 0.1}),
    ("lgbm", {"n_estimators": 200, "max_depth": 9, "learning_rate": 1.0}),
    ("linear", {}),
    ("ridge", {}),
    ("rf", {"n_estimators": 400, "max_depth": 5}),
]


class EnsemblePredictor(Predictor):
    """Mean of member predictors. Subclasses define ``member_specs()`` (duplicates allowed)."""

    MEMBERS_DIR = "members"

    def member_specs(self) -> list[MemberSpec]:
        raise NotImplementedError

    @property
    def n_members(self) -> int:
        """Members as the original counts them (duplicates included)."""
        return len(self.member_specs())

    def distinct_members(self) -> list[tuple[MemberSpec, int]]:
        """Each distinct member spec with its multiplicity, in first-appearance order."""
        counts: dict[str, int] = {}
        specs: dict[str, MemberSpec] = {}
        for name, kw in self.member_specs():
            key = json.dumps([name, kw], sort_keys=True)
            counts[key] = counts.get(key, 0) + 1
            specs.setdefault(key, (name, dict(kw)))
        return [(specs[k], counts[k]) for k in counts]

    def _fit(self, X, y):
        self.members: list[Predictor] = []
        self.weights: list[int] = []
        for (name, kw), count in self.distinct_members():
            member = create_predictor(name, seed=self.seed, n_jobs=self.n_jobs, **kw)
            self.members.append(member.fit(X, y))
            self.weights.append(count)

    def _predict(self, X):
        total = np.zeros(X.shape[0])
        for member, weight in zip(self.members, self.weights, strict=True):
            total += weight * member.predict(X)
        return total / sum(self.weights)

    def _save_model(self, directory: Path):
        for i, member in enumerate(self.members):
            member.save(directory / self.MEMBERS_DIR / f"{i:02d}")
        (directory / self.MEMBERS_DIR / "weights.json").write_text(json.dumps(self.weights))

    def _load_model(self, directory: Path):
        members_dir = directory / self.MEMBERS_DIR
        self.weights = json.loads((members_dir / "weights.json").read_text())
        self.members = [Predictor.load(members_dir / f"{i:02d}") for i in range(len(self.weights))]


class _GridEnsemble(EnsemblePredictor):
    base = "xgb"

    def __init__(
        self,
        seed: int = 0,
        n_jobs: int = 1,
        max_depth: Sequence[int] = (5, 9, 3),
        n_estimators: Sequence[int] = (200, 500, 800),
        learning_rate: Sequence[float] = (0.01, 0.1, 0.1, 1.0),
        keep_duplicates: bool = True,
        **member_params: Any,
    ):
        super().__init__(
            seed=seed,
            n_jobs=n_jobs,
            max_depth=[int(d) for d in max_depth],
            n_estimators=[int(n) for n in n_estimators],
            learning_rate=[float(lr) for lr in learning_rate],
            keep_duplicates=bool(keep_duplicates),
            **member_params,
        )

    def member_specs(self) -> list[MemberSpec]:
        p = self.params
        rates = p["learning_rate"] if p["keep_duplicates"] else list(dict.fromkeys(p["learning_rate"]))
        extra = {k: v for k, v in p.items() if k not in ("max_depth", "n_estimators", "learning_rate", "keep_duplicates")}
        return [
            (self.base, {"max_depth": d, "n_estimators": n, "learning_rate": lr, **extra})
            for d in p["max_depth"]
            for n in p["n_estimators"]
            for lr in rates
        ]


@register("ensemble_xgb")
class XGBEnsemble(_GridEnsemble):
    """36 XGBoost members (27 distinct): the grid of seed_system §6.5."""

    base = "xgb"

    def __init__(self, seed: int = 0, n_jobs: int = 1, max_depth=(5, 9, 3), n_estimators=(200, 500, 800),
                 learning_rate=(0.01, 0.1, 0.1, 1.0), keep_duplicates: bool = True, eval_metric: str = "rmse",
                 **member_params: Any):
        super().__init__(seed=seed, n_jobs=n_jobs, max_depth=max_depth, n_estimators=n_estimators,
                         learning_rate=learning_rate, keep_duplicates=keep_duplicates,
                         eval_metric=eval_metric, **member_params)


@register("ensemble_lgbm")
class LGBMEnsemble(_GridEnsemble):
    """36 LightGBM members over the same grid with learning rates {0.01, 0.1, 0.001, 1.0}."""

    base = "lgbm"

    def __init__(self, seed: int = 0, n_jobs: int = 1, max_depth=(5, 9, 3), n_estimators=(200, 500, 800),
                 learning_rate=(0.01, 0.1, 0.001, 1.0), keep_duplicates: bool = True, **member_params: Any):
        super().__init__(seed=seed, n_jobs=n_jobs, max_depth=max_depth, n_estimators=n_estimators,
                         learning_rate=learning_rate, keep_duplicates=keep_duplicates, **member_params)


@register("ensemble_mix")
class MixEnsemble(EnsemblePredictor):
    """The original's 11-member mixture (``MIX_MEMBERS``); ``members`` overrides the list."""

    def __init__(self, seed: int = 0, n_jobs: int = 1, members: Sequence[Sequence[Any]] | None = None):
        spec = None if members is None else [[str(name), dict(kw)] for name, kw in members]
        super().__init__(seed=seed, n_jobs=n_jobs, members=spec)

    def member_specs(self) -> list[MemberSpec]:
        members = self.params["members"]
        if members is None:
            return [(name, dict(kw)) for name, kw in MIX_MEMBERS]
        return [(name, dict(kw)) for name, kw in members]
