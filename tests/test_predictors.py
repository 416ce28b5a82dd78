"""surrogates.predictors and surrogates.normalisation: registry, fit/predict quality, save/load,
column checks, configs, the paper's constants, and tr_rf's leave-the-target-out data handling."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from surrogates.metrics import kendall_tau
from surrogates.normalisation import TargetPolicy, canonical_policy, normalise, normalise_groups
from surrogates.predictors import (
    Predictor,
    TransferRF,
    create_predictor,
    list_predictors,
    load_predictor,
    predictor_class,
)
from surrogates.predictors.ensemble import MIX_MEMBERS

CONF = Path(__file__).resolve().parents[1] / "conf" / "surrogate"
NAMES = [
    "random", "rf", "xgb", "xgb_tuned", "lgbm", "ensemble_xgb", "ensemble_lgbm", "ensemble_mix",
    "mlp", "linear", "ridge", "tr_rf",
]
LANGUAGE_MODELS = ["bert", "lm"]  # string inputs: tests/test_lm_predictor.py
N_FEATURES = 20
COLUMNS = [f"f{i}" for i in range(N_FEATURES)]

# Shrunk variants for speed; the real defaults are checked in test_paper_constants.
FAST = {
    "xgb_tuned": {"n_estimators": 100, "learning_rate": 0.1},
    "ensemble_xgb": {"n_estimators": (5, 20), "max_depth": (3, 5)},
    "ensemble_lgbm": {"n_estimators": (5, 20), "max_depth": (3, 5)},
    "ensemble_mix": {"members": [("xgb", {"n_estimators": 20}), ("lgbm", {"n_estimators": 20}),
                                 ("linear", {}), ("ridge", {}), ("rf", {"n_estimators": 20, "max_depth": 5})]},
    "mlp": {"hidden_layer_sizes": (16, 16), "max_iter": 200},
    "tr_rf": {"n_estimators": 30},
}


def _frame(n, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, N_FEATURES)) + offset, columns=COLUMNS)


def _target(X):
    # Monotone in f0, plus a little of f1 so it is not a single threshold.
    return 1 / (1 + np.exp(-2 * X["f0"].to_numpy())) + 0.02 * X["f1"].to_numpy()


def _write_run(path, n, seed, sign=1.0, zeros=0, extra=None, drop=None):
    X = _frame(n, seed)
    acc = 0.5 + sign * 0.4 * np.tanh(X["f0"].to_numpy())
    acc[:zeros] = 0.0
    frame = pd.concat([pd.DataFrame({"id": np.arange(n)}), X, pd.DataFrame({"accuracy": acc})], axis=1)
    if extra:
        for k, v in extra.items():
            frame[k] = v
    if drop:
        frame = frame.drop(columns=drop)
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture
def transfer_dir(tmp_path):
    """3 datasets x 2 seeds; the target ``gamma``'s files lack ``accuracy`` so reading them fails."""
    root = tmp_path / "transfer"
    root.mkdir()
    for i, ds in enumerate(["alpha", "beta"]):
        for s in range(2):
            _write_run(root / f"{ds}_seed={s}.csv", 60 + 10 * s, seed=10 * i + s, zeros=5 + s)
    for s in range(2):
        _write_run(root / f"gamma_seed={s}.csv", 50, seed=99 + s, drop=["accuracy"])
    (root / "notes.txt").write_text("not a feature file")
    return root


def _make(name, tmp_path=None, transfer_root=None, seed=0):
    kw = dict(FAST.get(name, {}))
    if name == "tr_rf":
        kw.update(transfer_dir=transfer_root, dataset="gamma")
    return create_predictor(name, seed=seed, **kw)


# ------------------------------------------------------------------------------ registry
def test_registry_lists_every_name():
    assert sorted([*NAMES, *LANGUAGE_MODELS]) == list_predictors()
    with pytest.raises(ValueError, match="unknown predictor 'nope'.*rf"):
        create_predictor("nope")


@pytest.mark.parametrize("name", NAMES)
def test_fit_predict_beats_trivial_baseline(name, transfer_dir):
    X, Xt = _frame(200, 0), _frame(100, 1)
    model = _make(name, transfer_root=transfer_dir).fit(X, _target(X))
    pred = model.predict(Xt)
    assert pred.shape == (100,) and pred.dtype == float and np.isfinite(pred).all()
    tau = kendall_tau(pred, _target(Xt))
    if name == "random":
        assert ((pred >= 0) & (pred < 1)).all() and abs(tau) < 0.3
    else:
        assert tau > 0.5, (name, tau)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_identical_predictions(name, transfer_dir, tmp_path):
    X, Xt = _frame(150, 2), _frame(40, 3)
    model = _make(name, transfer_root=transfer_dir, seed=5).fit(X, _target(X))
    model.save(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "predictor.json").read_text())["name"] == name
    assert not list((tmp_path / "saved").rglob("*.pkl"))
    if name == "tr_rf":  # the saved predictor does not need the transfer files any more
        for f in transfer_dir.iterdir():
            f.unlink()
    loaded = load_predictor(tmp_path / "saved")
    assert type(loaded) is type(model) and loaded.get_params() == json.loads(json.dumps(model.get_params()))
    assert loaded.feature_names_ == COLUMNS
    np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))


def test_unfitted_save_load_and_predict_before_fit(tmp_path):
    with pytest.raises(RuntimeError, match="before fit"):
        create_predictor("rf").predict(_frame(3, 0))
    create_predictor("xgb", seed=3, max_depth=2).save(tmp_path / "u")
    again = Predictor.load(tmp_path / "u")
    assert again.get_params()["max_depth"] == 2 and not again.is_fitted
    assert create_predictor("random", seed=1).predict(np.zeros((4, 2))).shape == (4,)


def test_column_names_are_kept_and_checked():
    X = _frame(80, 0)
    model = create_predictor("rf", n_estimators=10).fit(X, _target(X))
    base = model.predict(X)
    np.testing.assert_array_equal(model.predict(X[COLUMNS[::-1]]), base)  # re-ordered by name
    with pytest.raises(ValueError, match="missing 1 column.*f3"):
        model.predict(X.drop(columns=["f3"]))
    with pytest.raises(ValueError, match="not seen in fit: extra"):
        model.predict(X.assign(extra=1.0))
    with pytest.raises(ValueError, match="19 features"):
        model.predict(X.to_numpy()[:, 1:])
    np.testing.assert_array_equal(model.predict(X.to_numpy()), base)
    with pytest.raises(ValueError, match="non-finite"):
        create_predictor("rf").fit(X, np.full(80, np.nan))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # sklearn's finiteness check sums float32 values
def test_infinite_features_are_clipped_to_float32():
    X = _frame(60, 0)
    X.loc[::7, "f5"] = np.inf
    X.loc[::5, "f6"] = -1e300
    for name in ("rf", "xgb", "lgbm"):  # the tree libraries work in float32 and reject inf
        pred = create_predictor(name, n_estimators=10).fit(X, _target(X)).predict(X)
        assert pred.shape == (60,) and np.isfinite(pred).all()


def test_random_predictor_is_seeded_and_resumes_its_stream(tmp_path):
    a, b = create_predictor("random", seed=4), create_predictor("random", seed=4)
    np.testing.assert_array_equal(a.predict(np.zeros((5, 1))), b.predict(np.zeros((5, 1))))
    a.save(tmp_path / "r")
    np.testing.assert_array_equal(load_predictor(tmp_path / "r").predict(np.zeros((9, 1))),
                                  a.predict(np.zeros((9, 1))))
    assert not np.array_equal(create_predictor("random", seed=5).predict(np.zeros((5, 1))),
                              create_predictor("random", seed=4).predict(np.zeros((5, 1))))


# ------------------------------------------------------------------------------ constants, configs
def test_paper_constants():
    xe = create_predictor("ensemble_xgb")
    assert xe.n_members == 36 and len(xe.distinct_members()) == 27
    assert sorted({kw["learning_rate"] for _, kw in xe.member_specs()}) == [0.01, 0.1, 1.0]
    assert {(kw["max_depth"], kw["n_estimators"]) for _, kw in xe.member_specs()} == {
        (d, n) for d in (5, 9, 3) for n in (200, 500, 800)}
    assert all(kw["eval_metric"] == "rmse" for _, kw in xe.member_specs())
    assert dict(((n, kw["learning_rate"]), c) for (n, kw), c in xe.distinct_members()
                if kw["max_depth"] == 5 and kw["n_estimators"] == 200) == {
        ("xgb", 0.01): 1, ("xgb", 0.1): 2, ("xgb", 1.0): 1}
    assert create_predictor("ensemble_xgb", keep_duplicates=False).n_members == 27
    le = create_predictor("ensemble_lgbm")
    assert le.n_members == 36 and len(le.distinct_members()) == 36
    assert sorted({kw["learning_rate"] for _, kw in le.member_specs()}) == [0.001, 0.01, 0.1, 1.0]
    mix = create_predictor("ensemble_mix")
    assert mix.member_specs() == [(n, dict(kw)) for n, kw in MIX_MEMBERS] and mix.n_members == 11
    assert [n for n, _ in mix.member_specs()] == ["xgb"] * 4 + ["lgbm"] * 4 + ["linear", "ridge", "rf"]
    tuned = create_predictor("xgb_tuned", seed=7)
    p = tuned._make().get_params()
    assert (p["tree_method"], p["subsample"], p["n_estimators"], p["learning_rate"], p["random_state"], p["n_jobs"]) \
        == ("hist", 0.9, 10000, 0.01, 7, 1)
    rf = create_predictor("rf", seed=3)._make().get_params()
    assert (rf["n_estimators"], rf["max_features"], rf["bootstrap"], rf["random_state"], rf["n_jobs"]) == (100, 1.0, True, 3, 1)
    mlp = create_predictor("mlp", seed=2)._estimator().get_params()
    assert (mlp["hidden_layer_sizes"], mlp["learning_rate_init"], mlp["max_iter"], mlp["random_state"]) \
        == ((90, 180, 180), 0.01, 1000, 2)
    assert create_predictor("lgbm").get_params()["verbose"] == -1


def test_deduplicated_ensemble_equals_the_plain_mean():
    X, Xt = _frame(120, 0), _frame(30, 1)
    y = _target(X)
    grid = {"n_estimators": (10,), "max_depth": (3,), "learning_rate": (0.01, 0.1, 0.1, 1.0)}
    ens = create_predictor("ensemble_xgb", **grid).fit(X, y)
    assert ens.weights == [1, 2, 1]
    members = [create_predictor("xgb", n_estimators=10, max_depth=3, learning_rate=lr, eval_metric="rmse").fit(X, y)
               for lr in grid["learning_rate"]]
    np.testing.assert_allclose(ens.predict(Xt), np.mean([m.predict(Xt) for m in members], axis=0), rtol=1e-6)


def _compose(name, tmp_path):
    root = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}, "dataset": {"name": "gamma"},
                             "surrogate": OmegaConf.load(CONF / f"{name}.yaml")})
    node = OmegaConf.to_container(root, resolve=True)["surrogate"]
    assert node.pop("name") == name and node["_partial_"] is True
    return node  # a plain dict; instantiated below as a DictConfig, as the search does


@pytest.mark.parametrize("name", [n for n in NAMES if n != "random"])
def test_every_predictor_has_a_config_that_builds_it(name, tmp_path):
    node = _compose(name, tmp_path)
    predictor = instantiate(OmegaConf.create(node))(seed=3)  # lists arrive as ListConfig
    assert type(predictor) is predictor_class(name) and predictor.seed == 3
    kwargs = {k: v for k, v in node.items() if not k.startswith("_")}
    assert json.dumps(create_predictor(name, seed=3, **kwargs).get_params(), sort_keys=True) == \
        json.dumps(predictor.get_params(), sort_keys=True)
    if name == "tr_rf":
        assert predictor.params["transfer_dir"] == f"{tmp_path}/transfer"
        assert predictor.params["dataset"] == "gamma" and predictor.params["policy"] == "minmax"
    else:  # the yaml spells out the constructor defaults
        assert json.dumps(create_predictor(name, seed=3).get_params(), sort_keys=True) == \
            json.dumps(predictor.get_params(), sort_keys=True)
    assert (CONF / "random.yaml").is_file()  # the random predictor without an encoder (nas.search.surrogate.RandomSurrogate)


# ------------------------------------------------------------------------------ tr_rf
def _expected_pool(root, files, policy):
    ys, n = [], 0
    for f in files:
        frame = pd.read_csv(root / f)
        acc = frame["accuracy"].to_numpy()
        acc = acc[acc > 0]
        n += acc.size
        ys.append(normalise(acc, policy))
    return np.concatenate(ys), n


@pytest.mark.parametrize("policy", ["minmax", "ecdf", "raw"])
def test_tr_rf_leaves_the_target_out_drops_zeros_and_normalises_per_file(transfer_dir, policy):
    X = _frame(30, 7)
    y = _target(X)
    y[:4] = 0.0
    model = TransferRF(transfer_dir, "gamma", policy=policy, seed=0, n_estimators=10).fit(X, y)
    files = ["alpha_seed=0.csv", "alpha_seed=1.csv", "beta_seed=0.csv", "beta_seed=1.csv"]
    assert [Path(f).name for f in model.used_files_] == files
    expected, n_transfer = _expected_pool(transfer_dir, files, policy)
    assert model.n_transfer_rows_ == n_transfer == 260 - 2 * (5 + 6)
    assert model.n_current_rows_ == 26
    np.testing.assert_allclose(model._train_y, np.concatenate([expected, normalise(y[4:], policy)]))
    if policy == "minmax":
        assert model._train_y.min() == 0 and model._train_y.max() == 1
        assert (model._train_y == 1).sum() == 5  # one maximum per source: 4 files + the run


def test_tr_rf_reading_the_target_would_fail(transfer_dir):
    # The target's files lack `accuracy`: any attempt to read them raises. Another target reads them.
    with pytest.raises(ValueError, match="gamma_seed=0.csv: no 'accuracy' column"):
        TransferRF(transfer_dir, "alpha", n_estimators=5).fit(_frame(10, 0), np.ones(10))
    only_beta = TransferRF(transfer_dir, "gamma", source_datasets=["beta"], n_estimators=5).fit(None, None)
    assert [Path(f).name for f in only_beta.used_files_] == ["beta_seed=0.csv", "beta_seed=1.csv"]
    assert only_beta.n_current_rows_ == 0 and only_beta.predict(_frame(4, 1)).shape == (4,)


def test_tr_rf_errors_name_the_problem(tmp_path, transfer_dir):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=rf"{missing}.*<dataset>_seed=<seed>\.csv"):
        TransferRF(missing, "gamma").fit(_frame(5, 0), np.ones(5))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=rf"no feature files in {empty}.*<dataset>_seed=<seed>\.csv"):
        TransferRF(empty, "gamma").fit(_frame(5, 0), np.ones(5))
    with pytest.raises(FileNotFoundError, match="no transfer feature files for target 'alpha'"):
        TransferRF(transfer_dir, "alpha", source_datasets=["alpha"]).fit(_frame(5, 0), np.ones(5))
    X = _frame(10, 0).assign(novel=1.0)
    with pytest.raises(ValueError, match=r"alpha_seed=0\.csv: missing feature column\(s\) novel"):
        TransferRF(transfer_dir, "gamma").fit(X, np.ones(10))
    with pytest.raises(ValueError, match="needs transfer_dir"):
        create_predictor("tr_rf")


def test_tr_rf_plain_array_takes_the_file_column_names(transfer_dir):
    X = _frame(20, 0)
    model = TransferRF(transfer_dir, "gamma", n_estimators=5).fit(X.to_numpy(), _target(X))
    assert model.feature_names_ == COLUMNS
    with pytest.raises(ValueError, match="3 columns"):
        TransferRF(transfer_dir, "gamma").fit(np.zeros((4, 3)), np.ones(4))


# ------------------------------------------------------------------------------ normalisation
def test_normalisation_policies():
    y = np.array([0.2, 0.6, 0.4, 0.6, np.nan])
    np.testing.assert_allclose(normalise(y, "raw"), y)
    np.testing.assert_allclose(normalise(y, "minmax"), [0, 1, 0.5, 1, np.nan])
    np.testing.assert_allclose(normalise(y, "ecdf"), [0.25, 0.875, 0.5, 0.875, np.nan])
    np.testing.assert_allclose(normalise(y, "percentile"), normalise(y, "ecdf"))
    np.testing.assert_allclose(normalise([0.3, 0.3], "minmax"), [0.5, 0.5])
    assert canonical_policy(None) == "raw"
    with pytest.raises(ValueError, match="unknown target normalisation policy 'zscore'"):
        normalise(y, "zscore")
    # pandas' rank(pct=True) is the reference for ECDF.
    r = np.random.default_rng(0).integers(0, 5, 50).astype(float)
    np.testing.assert_allclose(normalise(r, "ecdf"), pd.Series(r).rank(pct=True).to_numpy())


def test_target_policy_per_group_and_transform():
    y = np.array([1.0, 3.0, 10.0, 20.0, 2.0, 30.0])
    groups = ["a", "a", "b", "b", "a", "b"]
    np.testing.assert_allclose(normalise_groups(y, groups, "minmax"), [0, 1, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(TargetPolicy("ecdf").per_group(y, groups), [1 / 3, 1, 1 / 3, 2 / 3, 2 / 3, 1])
    mm = TargetPolicy("minmax").fit([1.0, 3.0])
    np.testing.assert_allclose(mm.transform([2.0, 5.0]), [0.5, 2.0])
    ec = TargetPolicy("ecdf").fit([1.0, 2.0, 2.0, 4.0])
    np.testing.assert_allclose(ec.transform([2.0, 3.0, 0.0]), [5 / 8, 7 / 8, 1 / 8])
    ref = np.random.default_rng(1).normal(size=40)
    pol = TargetPolicy("ecdf")
    np.testing.assert_allclose(pol.fit_transform(ref), pol.transform(ref))
    with pytest.raises(RuntimeError, match="before fit"):
        TargetPolicy("minmax").transform([1.0])
    assert math.isnan(normalise([np.nan], "minmax")[0])
