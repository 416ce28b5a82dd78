"""surrogates.protocols on synthetic feature tables with known answers."""
import numpy as np
import pandas as pd
import pytest

from nas.markdown import to_markdown
from surrogates.predictors import Predictor, create_predictor
from surrogates.predictors.tables import load_feature_archive
from surrogates.protocols import (
    in_run_windows,
    leave_one_out,
    one_to_one,
    results_table,
)

FEATURES = ["f0", "f1", "f2", "f3"]


class FirstFeature(Predictor):
    """A perfect monotone predictor when accuracy increases with f0; records what it was fitted on."""

    name = "first_feature"
    fits: list = []

    def _fit(self, X, y):
        FirstFeature.fits.append((X.copy(), y.copy()))

    def _predict(self, X):
        return X[:, 0]


@pytest.fixture(autouse=True)
def _reset_fits():
    FirstFeature.fits = []


def run(n, seed, sign=1.0, zeros=(), offset=0.0):
    """A search run: accuracy strictly monotone in f0 (increasing for sign > 0); `zeros` failed rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    X[:, 0] += offset
    acc = 0.5 + sign * 0.4 * np.tanh(X[:, 0] - offset)
    acc[list(zeros)] = 0.0
    return pd.concat([pd.DataFrame({"id": np.arange(n)}), pd.DataFrame(X, columns=FEATURES),
                      pd.DataFrame({"accuracy": acc})], axis=1)


def rf():
    return create_predictor("rf", seed=0, n_estimators=30)


# ------------------------------------------------------------------------------ in-run windows
def test_windows_sizes_and_perfect_predictor():
    frame = run(450, 0, zeros=[3, 50, 99, 120])  # 3 zeros before row 100, one in the test window [100, 200)
    out = in_run_windows(frame, FirstFeature, limits=(100, 200, 300, 400, 500), test_size=100)
    assert list(out["limit"]) == [100, 200, 300, 400]  # 500 has no test rows
    assert list(out["n_train"]) == [97, 196, 296, 396]
    assert list(out["n_test"]) == [100, 100, 100, 50]
    assert out.loc[1:, "kendall_tau"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert out.loc[0, "kendall_tau"] < 1.0  # the zero row at 120 is kept in the test window
    assert {"spearman", "pearson", "mae", "rmse", "precision_at_10"} <= set(out.columns)
    assert [len(X) for X, _ in FirstFeature.fits] == [97, 196, 296, 396]
    # Training rows are a strict prefix: the rows of the last fit are the first 400 minus zeros.
    np.testing.assert_array_equal(FirstFeature.fits[-1][0][:, 0], frame.drop(index=[3, 50, 99, 120])["f0"].to_numpy()[:396])


def test_windows_with_transfer_and_no_train_mode():
    frame = run(300, 1)
    transfer = {"a_seed=0": run(80, 2, zeros=[0, 1]), "b_seed=0": run(50, 3)}
    out = in_run_windows(frame, FirstFeature, limits=(100, 200), transfer=transfer, policy="minmax")
    assert list(out["n_train"]) == [228, 328]
    X, y = FirstFeature.fits[0]
    # minmax per source: each of the 3 sources (2 transfer tables + the prefix) has one 0 and one 1.
    assert (y == 0).sum() == 3 and (y == 1).sum() == 3 and y.min() == 0 and y.max() == 1
    FirstFeature.fits = []
    fixed = in_run_windows(frame, FirstFeature, limits=(100, 200), transfer=transfer, train_current=False)
    assert list(fixed["n_train"]) == [128, 128] and len(FirstFeature.fits) == 1
    assert fixed["kendall_tau"].tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="needs transfer"):
        in_run_windows(frame, FirstFeature, train_current=False)
    with pytest.raises(ValueError, match="transfer b_seed=0: missing feature column"):
        in_run_windows(frame, FirstFeature, limits=(100,), transfer={"b_seed=0": run(5, 0).drop(columns="f2")})


def test_windows_with_a_learned_model_by_name():
    out = in_run_windows(run(300, 4), rf, limits=(100, 200))
    assert (out["kendall_tau"] > 0.7).all()
    out = in_run_windows(run(150, 4), "random", limits=(100,), test_size=50)
    assert abs(out.loc[0, "kendall_tau"]) < 0.4


# ------------------------------------------------------------------------------ one-to-one
def test_one_to_one_keeps_target_zeros_and_sign():
    source = run(200, 5, zeros=range(10))
    target = run(120, 6, zeros=[0, 1, 2])
    same = one_to_one(source, target, rf)
    assert same.loc[0, "n_train"] == 190 and same.loc[0, "n_test"] == 120
    assert same.loc[0, "kendall_tau"] > 0.6
    reversed_source = run(200, 7, sign=-1.0)
    flipped = one_to_one(reversed_source, run(120, 6), rf)
    assert flipped.loc[0, "kendall_tau"] < -0.6
    perfect = one_to_one(source, run(120, 6), FirstFeature)
    assert perfect.loc[0, "kendall_tau"] == pytest.approx(1.0) and perfect.loc[0, "spearman"] == pytest.approx(1.0)
    pooled = one_to_one([source, run(50, 8)], [run(30, 9), run(20, 10)], FirstFeature, policy="ecdf")
    assert (pooled.loc[0, "n_train"], pooled.loc[0, "n_test"]) == (240, 50)
    assert FirstFeature.fits[-1][1].max() == 1.0  # ECDF per source


# ------------------------------------------------------------------------------ leave-one-out
def test_leave_one_out_trains_only_on_other_datasets(tmp_path):
    frames = {
        "alpha": {0: run(60, 11, zeros=[5]), 1: run(40, 12)},
        "beta": [run(70, 13, zeros=[0, 1])],
        "gamma": {0: run(50, 14, offset=100.0, zeros=[7]), 3: run(30, 15, offset=100.0)},
    }
    out = leave_one_out(frames, "gamma", FirstFeature, policy="minmax")
    assert out.loc[0, "dataset"] == "gamma"
    assert (out.loc[0, "n_train"], out.loc[0, "n_test"]) == (59 + 40 + 68, 80)
    X, y = FirstFeature.fits[0]
    assert X[:, 0].max() < 50  # no gamma row (f0 ~ 100) was used for training
    assert (y == 1).sum() == 3  # minmax per file: alpha/0, alpha/1, beta/0
    per_file = leave_one_out(frames, "gamma", FirstFeature, per_file=True)
    assert list(per_file["run"]) == [0, 3] and list(per_file["n_test"]) == [50, 30]
    assert per_file.loc[1, "kendall_tau"] == pytest.approx(1.0)  # no zeros in gamma/3
    every = leave_one_out(frames, None, FirstFeature)
    assert list(every["dataset"]) == ["alpha", "beta", "gamma"]
    assert list(every["n_train"]) == [68 + 79, 99 + 79, 167]
    with pytest.raises(ValueError, match="not among"):
        leave_one_out(frames, "delta", FirstFeature)
    # The same archive through files.
    for ds, runs in (("alpha", frames["alpha"]), ("gamma", frames["gamma"])):
        for seed, frame in runs.items():
            frame.to_csv(tmp_path / f"{ds}_seed={seed}.csv", index=False)
    archive = load_feature_archive(tmp_path)
    assert sorted(archive) == ["alpha", "gamma"] and sorted(archive["gamma"]) == [0, 3]
    from_files = leave_one_out(archive, "gamma", FirstFeature, per_file=True)
    np.testing.assert_allclose(from_files["kendall_tau"], leave_one_out(
        {k: frames[k] for k in ("alpha", "gamma")}, "gamma", FirstFeature, per_file=True)["kendall_tau"])


# ------------------------------------------------------------------------------ tables
def test_results_table_and_markdown():
    rows = [
        {"dataset": "addnist", "predictor": "rf", "kendall_tau": 0.5},
        {"dataset": "addnist", "predictor": "rf", "kendall_tau": 0.7},
        {"dataset": "addnist", "predictor": "xgb", "kendall_tau": 0.4},
        {"dataset": "chesseract", "predictor": "rf", "kendall_tau": 0.2},
    ]
    table = results_table(rows, average=True)
    assert list(table.index) == ["addnist", "chesseract", "mean"] and list(table.columns) == ["rf", "xgb"]
    assert table.loc["addnist", "rf"] == pytest.approx(0.6)
    assert np.isnan(table.loc["chesseract", "xgb"]) and table.loc["mean", "xgb"] == pytest.approx(0.4)
    assert table.loc["mean", "rf"] == pytest.approx(0.4)
    md = to_markdown(table)
    assert md.splitlines() == [
        "| dataset | rf | xgb |",
        "|---|---:|---:|",
        "| addnist | 0.600 | 0.400 |",
        "| chesseract | 0.200 | - |",
        "| mean | 0.400 | 0.400 |",
    ]
    with pytest.raises(ValueError, match="no column 'spearman'"):
        results_table(rows, value="spearman")
