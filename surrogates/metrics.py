"""Surrogate ranking and regression metrics: the one implementation used everywhere.

Search logging (``surrogate/kendall_tau`` at each refit), the evaluation protocols and the figures
all call these functions, so a number in a log, a table and a plot title always means the same
thing.

Conventions, shared by every function:

- ``pred`` and ``true`` are array-likes of equal length (``None`` is read as NaN; an ``(n, 1)``
  column is flattened). A length mismatch raises :class:`ValueError`; nothing else raises.
- Pairs where either value is not finite (NaN, ±inf: e.g. a failed candidate's accuracy) are dropped
  before anything is computed.
- Correlations are NaN (silently, no ``RuntimeWarning``) when fewer than two pairs remain or either
  side is constant; ``mae``/``rmse`` are NaN when no pair remains.
- Higher is better on both sides (accuracies, or scores that rank like accuracies).

Everything is plain numpy; scipy is the reference only in the tests. Kendall's tau-b uses Knight's
O(n log n) algorithm: sort by (true, pred), count ties, and count discordant pairs as the inversions
of the ``pred`` ranks in that order, with a bottom-up merge sort vectorised over whole levels
(``log2 n`` numpy passes, so 100,000 items take well under a second).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

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


def _tie_pairs(sorted_values: np.ndarray) -> int:
    """Number of tied pairs, sum over groups of t*(t-1)/2, in an already sorted array."""
    if sorted_values.size < 2:
        return 0
    boundaries = np.flatnonzero(np.diff(sorted_values) != 0)
    sizes = np.diff(np.concatenate(([0], boundaries + 1, [sorted_values.size])))
    return int((sizes * (sizes - 1) // 2).sum())


def _count_inversions(ranks: np.ndarray) -> int:
    """Pairs i < j with ranks[i] > ranks[j] (strict), for non-negative integer ranks.

    Bottom-up merge sort, one numpy pass per level: at width ``w`` the array is sorted within
    blocks of ``w``; blocks ``2k`` (left) and ``2k+1`` (right) form pair ``k``. Offsetting each
    value by ``k * m`` (``m`` > every rank) makes all left blocks one globally sorted array, so one
    ``searchsorted`` counts, for every right element, the left elements of its pair above it.
    """
    n = ranks.size
    if n < 2:
        return 0
    s = ranks.astype(np.int64, copy=True)
    m = int(s.max()) + 1
    idx = np.arange(n, dtype=np.int64)
    inversions = 0
    width = 1
    while width < n:
        block = idx // width
        pair = block // 2
        keys = pair * m + s
        is_right = (block % 2) == 1
        left = keys[~is_right]  # sorted: blocks sorted inside, pair offsets increase
        right_keys = keys[is_right]
        right_pair = pair[is_right]
        # Left elements of the same pair that are strictly greater than each right element.
        end_of_pair = np.searchsorted(left, right_pair * m + (m - 1), side="right")
        not_greater = np.searchsorted(left, right_keys, side="right")
        inversions += int((end_of_pair - not_greater).sum())
        # Merge: a global sort keeps each pair inside its own index range (offsets differ).
        merged = np.sort(keys, kind="stable")
        s = merged - (idx // (2 * width)) * m
        width *= 2
    return inversions


def _dense_ranks(x: np.ndarray) -> np.ndarray:
    """0-based dense ranks (equal values share a rank, no gaps)."""
    return np.unique(x, return_inverse=True)[1].ravel()


def rankdata_average(x: ArrayLike) -> np.ndarray:
    """1-based ranks with ties given the average of the ranks they span (like scipy's default)."""
    a = np.asarray(x, dtype=float).ravel()
    n = a.size
    if n == 0:
        return np.zeros(0)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # Group starts in the sorted array; each group gets the mean of positions start+1 .. end.
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_a) != 0) + 1))
    ends = np.concatenate((starts[1:], [n]))
    group_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(n)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def _pearson_valid(p: np.ndarray, t: np.ndarray) -> float:
    if p.size < 2 or _is_constant(p) or _is_constant(t):
        return float("nan")
    dp = p - p.mean()
    dt = t - t.mean()
    # Normalise each side first, as scipy does, so large magnitudes cannot overflow.
    dp /= np.linalg.norm(dp)
    dt /= np.linalg.norm(dt)
    r = float(np.dot(dp, dt))
    return max(-1.0, min(1.0, r))


def kendall_tau(pred: ArrayLike, true: ArrayLike) -> float:
    """Kendall's tau-b (ties on either side handled), O(n log n).

    tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2)) with n0 = n(n-1)/2, n1/n2 the pairs tied in
    ``true``/``pred``. Symmetric in its arguments.
    """
    p, t = _valid_pairs(pred, true)
    n = p.size
    if n < 2 or _is_constant(p) or _is_constant(t):
        return float("nan")
    order = np.lexsort((p, t))  # by true, then by pred
    t_sorted = t[order]
    p_ranks = _dense_ranks(p)[order]
    n0 = n * (n - 1) // 2
    ties_true = _tie_pairs(t_sorted)
    # Pairs tied on both: equal true and equal pred are adjacent after the lexsort.
    joint = np.ones(n - 1, dtype=bool)
    joint &= np.diff(t_sorted) == 0
    joint &= np.diff(p_ranks) == 0
    starts = np.concatenate(([0], np.flatnonzero(~joint) + 1))
    sizes = np.diff(np.concatenate((starts, [n])))
    ties_both = int((sizes * (sizes - 1) // 2).sum())
    ties_pred = _tie_pairs(np.sort(p))
    # Within a run of equal `true` the pred ranks are ascending, so every strict inversion is a
    # pair with true_i < true_j and pred_i > pred_j: a discordant pair.
    discordant = _count_inversions(p_ranks)
    numerator = n0 - ties_true - ties_pred + ties_both - 2 * discordant
    denominator = math.sqrt(float(n0 - ties_true)) * math.sqrt(float(n0 - ties_pred))
    if denominator == 0:
        return float("nan")
    tau = numerator / denominator
    return max(-1.0, min(1.0, tau))


def spearman(pred: ArrayLike, true: ArrayLike) -> float:
    """Spearman's rho: Pearson correlation of the average ranks (ties share their mean rank)."""
    p, t = _valid_pairs(pred, true)
    if p.size < 2:
        return float("nan")
    return _pearson_valid(rankdata_average(p), rankdata_average(t))


def pearson(pred: ArrayLike, true: ArrayLike) -> float:
    """Pearson's linear correlation coefficient."""
    p, t = _valid_pairs(pred, true)
    return _pearson_valid(p, t)


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
