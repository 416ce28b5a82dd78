"""Surrogate ranking and regression metrics: the one implementation used everywhere.

Search logging (``surrogate/kendall_tau`` at each refit), the evaluation protocols and the figures
all call these functions, so a number in a log, a table and a plot title always means the same
thing. The correlations are scipy's (``kendalltau`` tau-b, O(n log n); ``spearmanr``;
``pearsonr``; ``rankdata``); this module adds only what scipy lacks: one policy for bad input and
precision@k.

Conventions, shared by every function:

- ``pred`` and ``true`` are array-likes of equal length (``None`` is read as NaN; an ``(n, 1)``
  column is flattened). A length mismatch raises :class:`ValueError`; nothing else raises.
- Pairs where either value is not finite (NaN, ±inf: e.g. a failed candidate's accuracy) are dropped
  before anything is computed.
- Correlations are NaN (silently: scipy's constant-input warning is never raised, because such
  input never reaches it) when fewer than two pairs remain or either side is constant;
  ``mae``/``rmse`` are NaN when no pair remains.
- Higher is better on both sides (accuracies, or scores that rank like accuracies).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "kendall_tau",
    "spearman",
    "pearson",
    "mae",
    "rmse",
    "precision_at_k",
    "rank_metrics",
    "rankdata_average",
]

ArrayLike = Sequence[Any] | np.ndarray


def _valid_pairs(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D float arrays with the non-finite pairs dropped."""
    p = np.asarray(pred, dtype=float).ravel()
    t = np.asarray(true, dtype=float).ravel()
    if p.shape != t.shape:
        raise ValueError(
            f"pred and true must have the same length, got {p.size} predictions "
            f"and {t.size} true values"
        )
    keep = np.isfinite(p) & np.isfinite(t)
    if keep.all():
        return p, t
    return p[keep], t[keep]


def _is_constant(x: np.ndarray) -> bool:
    # Exact comparison, not var == 0: the mean of a constant float array is not always exactly
    # that constant, which would give a tiny non-zero variance and a meaningless correlation.
    return bool(np.all(x == x[0]))


def _correlation(statistic: Callable[[np.ndarray, np.ndarray], Any], pred: ArrayLike, true: ArrayLike) -> float:
    """scipy's ``statistic`` under this module's policy: NaN for < 2 pairs or a constant side."""
    p, t = _valid_pairs(pred, true)
    if p.size < 2 or _is_constant(p) or _is_constant(t):
        return float("nan")
    value = float(statistic(p, t).statistic)
    return max(-1.0, min(1.0, value)) if math.isfinite(value) else float("nan")


def kendall_tau(pred: ArrayLike, true: ArrayLike) -> float:
    """Kendall's tau-b (ties on either side handled; ``scipy.stats.kendalltau``). Symmetric."""
    return _correlation(stats.kendalltau, pred, true)


def spearman(pred: ArrayLike, true: ArrayLike) -> float:
    """Spearman's rho: Pearson correlation of the average ranks (``scipy.stats.spearmanr``)."""
    return _correlation(stats.spearmanr, pred, true)


def pearson(pred: ArrayLike, true: ArrayLike) -> float:
    """Pearson's linear correlation coefficient (``scipy.stats.pearsonr``)."""
    return _correlation(stats.pearsonr, pred, true)


def rankdata_average(x: ArrayLike) -> np.ndarray:
    """1-based ranks with ties given the average of the ranks they span (``scipy.stats.rankdata``)."""
    return stats.rankdata(np.asarray(x, dtype=float).ravel(), method="average")


def mae(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error (same units as the targets)."""
    p, t = _valid_pairs(pred, true)
    if p.size == 0:
        return float("nan")
    return float(np.mean(np.abs(p - t)))


def rmse(pred: ArrayLike, true: ArrayLike) -> float:
    """Root mean squared error (same units as the targets)."""
    p, t = _valid_pairs(pred, true)
    if p.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((p - t) ** 2)))


def _top_k(x: np.ndarray, k: int) -> np.ndarray:
    # Descending, stable: among equal values the earlier item wins, so the set is deterministic.
    return np.argsort(-x, kind="stable")[:k]


def precision_at_k(pred: ArrayLike, true: ArrayLike, k: int | float) -> float:
    """Fraction of the true top-k (by true value) that are also in the predicted top-k.

    ``k`` is a count (int >= 1) or a fraction of the valid items in (0, 1), rounded up to at least
    one item. The answer is NaN when no pair is valid or when ``k`` covers every valid item (then
    both top-k sets are everything and the score says nothing). Ties at the cut-off go to the
    earlier item on both sides.
    """
    p, t = _valid_pairs(pred, true)
    n = p.size
    if isinstance(k, bool) or not isinstance(k, int | float | np.integer | np.floating):
        raise ValueError(f"k must be an int >= 1 or a fraction in (0, 1), got {k!r}")
    if isinstance(k, float | np.floating) and not float(k).is_integer():
        if not 0.0 < k < 1.0:
            raise ValueError(f"a fractional k must lie in (0, 1), got {k!r}")
        k_items = max(1, math.ceil(k * n))
    else:
        k_items = int(k)
        if k_items < 1:
            raise ValueError(f"k must be an int >= 1 or a fraction in (0, 1), got {k!r}")
    if n == 0 or k_items >= n:
        return float("nan")
    hits = np.intersect1d(_top_k(t, k_items), _top_k(p, k_items)).size
    return hits / k_items


def rank_metrics(pred: ArrayLike, true: ArrayLike) -> dict[str, float]:
    """All metrics at once, keyed as they are logged (``precision_at_10``: the top 10 items)."""
    p, t = _valid_pairs(pred, true)
    return {
        "kendall_tau": kendall_tau(p, t),
        "spearman": spearman(p, t),
        "pearson": pearson(p, t),
        "mae": mae(p, t),
        "rmse": rmse(p, t),
        "precision_at_10": precision_at_k(p, t, 10),
    }
