"""surrogates.metrics against scipy.stats (the reference) and hand-computed cases."""
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from surrogates.metrics import (
    kendall_tau,
    mae,
    pearson,
    precision_at_k,
    rank_metrics,
    rankdata_average,
    rmse,
    spearman,
)

TOL = 1e-9


def _random_pairs(n, ties, seed):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=n)
    pred = true + rng.normal(scale=0.8, size=n)
    if ties:  # coarse rounding gives many ties on both sides, some joint
        true = np.round(true * 2)
        pred = np.round(pred)
    return pred, true


CASES = [(n, ties, seed) for n in (3, 7, 50, 500, 3000) for ties in (False, True) for seed in range(3)]


@pytest.mark.parametrize("n,ties,seed", CASES)
def test_correlations_match_scipy(n, ties, seed):
    pred, true = _random_pairs(n, ties, seed)
    if np.all(pred == pred[0]) or np.all(true == true[0]):
        pytest.skip("constant input drawn")
    assert kendall_tau(pred, true) == pytest.approx(
        stats.kendalltau(pred, true, variant="b").statistic, abs=TOL
    )
    assert spearman(pred, true) == pytest.approx(stats.spearmanr(pred, true).statistic, abs=TOL)
    assert pearson(pred, true) == pytest.approx(stats.pearsonr(pred, true).statistic, abs=TOL)


@pytest.mark.parametrize("ties", [False, True])
def test_rankdata_average_matches_scipy(ties):
    x = np.random.default_rng(1).normal(size=200)
    if ties:
        x = np.round(x)
    np.testing.assert_allclose(rankdata_average(x), stats.rankdata(x, method="average"), atol=TOL)


def test_kendall_symmetric_and_heavy_ties():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 3, size=400).astype(float)
    b = rng.integers(0, 4, size=400).astype(float)
    ref = stats.kendalltau(a, b, variant="b").statistic
    assert kendall_tau(a, b) == pytest.approx(ref, abs=TOL)
    assert kendall_tau(b, a) == pytest.approx(ref, abs=TOL)


def test_hand_computed_tiny_cases():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau([3, 2, 1], [1, 2, 3]) == -1.0
    # pairs: (1,2) C, (1,3) C, (2,3) D -> (2 - 1) / 3
    assert kendall_tau([1, 3, 2], [1, 2, 3]) == pytest.approx(1 / 3)
    # pred ties pair (2,3): n0=3, n1(true)=0, n2(pred)=1, C=2, D=0 -> 2 / sqrt(3 * 2)
    assert kendall_tau([1, 2, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    # ranks (1, 2.5, 2.5) vs (1, 2, 3): d = (0, .5, -.5); rho = pearson of ranks
    assert spearman([1, 2, 2], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))


def test_precision_at_k_known_answers():
    true = np.arange(10, dtype=float)  # true top-3 is items 9, 8, 7
    assert precision_at_k(true, true, 3) == 1.0
    assert precision_at_k(-true, true, 3) == 0.0
    pred = true.copy()
    pred[9] = -1.0  # predicted top-3: 8, 7, 6 -> hits 8 and 7
    assert precision_at_k(pred, true, 3) == pytest.approx(2 / 3)
    # fraction: 0.25 of 10 -> ceil(2.5) = 3 items
    assert precision_at_k(pred, true, 0.25) == pytest.approx(2 / 3)
    assert precision_at_k(pred, true, 0.01) == 0.0  # at least one item: the true best, 9
    assert precision_at_k(pred, true, 3.0) == pytest.approx(2 / 3)  # integral float is a count
    # k covering every item says nothing
    assert math.isnan(precision_at_k(pred, true, 10))
    assert math.isnan(precision_at_k([], [], 1))


@pytest.mark.parametrize("bad_k", [0, -1, 1.5, -0.2, True, "3"])
def test_precision_at_k_rejects_bad_k(bad_k):
    with pytest.raises(ValueError):
        precision_at_k([1, 2, 3], [1, 2, 3], bad_k)


def test_nan_pairs_dropped():
    pred = [1.0, np.nan, 3.0, 4.0, 2.0, None]
    true = [1.0, 5.0, np.inf, 4.0, 3.0, 2.0]
    # valid pairs: (1,1), (4,4), (2,3)
    p, t = [1.0, 4.0, 2.0], [1.0, 4.0, 3.0]
    assert kendall_tau(pred, true) == pytest.approx(kendall_tau(p, t))
    assert spearman(pred, true) == pytest.approx(spearman(p, t))
    assert pearson(pred, true) == pytest.approx(pearson(p, t))
    assert mae(pred, true) == pytest.approx(1 / 3)
    assert rmse(pred, true) == pytest.approx(math.sqrt(1 / 3))


@pytest.mark.parametrize(
    "pred,true",
    [
        ([], []),
        ([1.0], [2.0]),
        ([np.nan, 1.0], [1.0, np.nan]),
        ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]),  # zero variance in true
        ([0.1, 0.1, 0.1], [1.0, 2.0, 3.0]),  # zero variance in pred (mean not exact in floats)
    ],
)
def test_degenerate_inputs_give_nan_quietly(pred, true):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (kendall_tau, spearman, pearson):
            assert math.isnan(fn(pred, true))
        metrics = rank_metrics(pred, true)
    assert set(metrics) == {"kendall_tau", "spearman", "pearson", "mae", "rmse", "precision_at_10"}
    assert math.isnan(metrics["kendall_tau"])


def test_mae_rmse_nan_only_without_pairs():
    assert math.isnan(mae([], []))
    assert math.isnan(rmse([np.nan], [1.0]))
    assert mae([1.0], [3.0]) == 2.0


@pytest.mark.parametrize("fn", [kendall_tau, spearman, pearson, mae, rmse, rank_metrics])
def test_length_mismatch_raises(fn):
    with pytest.raises(ValueError, match="same length"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])


def test_precision_length_mismatch_raises():
    with pytest.raises(ValueError, match="same length"):
        precision_at_k([1.0, 2.0, 3.0], [1.0, 2.0], 1)


def test_column_vector_predictions_accepted():
    pred = np.array([[0.1], [0.5], [0.3]])
    assert kendall_tau(pred, [1, 3, 2]) == 1.0


def test_rank_metrics_keys_and_values():
    pred, true = _random_pairs(200, ties=True, seed=3)
    m = rank_metrics(pred, true)
    assert list(m) == ["kendall_tau", "spearman", "pearson", "mae", "rmse", "precision_at_10"]
    assert m["kendall_tau"] == pytest.approx(kendall_tau(pred, true))
    assert m["precision_at_10"] == pytest.approx(precision_at_k(pred, true, 10))
    assert all(isinstance(v, float) for v in m.values())


def test_kendall_large_input_is_fast_and_exact():
    pred, true = _random_pairs(20000, ties=False, seed=11)
    assert kendall_tau(pred, true) == pytest.approx(
        stats.kendalltau(pred, true, variant="b").statistic, abs=TOL
    )
