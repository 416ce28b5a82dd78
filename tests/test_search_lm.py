"""surrogate=lm inside a search: the long strings, the paper's cadence, and a resume that continues
from the fine-tuned weights saved in the run dir (never a silent refit).

Offline and fast: a tiny encoder (2 layers, hidden 32, a word tokenizer trained on sampled
architecture strings) is written with save_pretrained and passed as surrogate.model_name_or_path."""
from __future__ import annotations

import pytest
from search_helpers import deterministic_view, run_dir_for, search_config

import nas.search.runner as runner_module
from nas.search.archive import read_archive
from nas.search.checkpoint import load_checkpoint
from nas.search.runner import SearchError, SearchRunner
from nas.search.strategies.surrogate_evolution import SurrogateEvolution
from nas.search.surrogate import LanguageModelSurrogate
from nas.space import EinSpace
from surrogates.predictors.language_model import LanguageModelPredictor, tiny_encoder

ARM = ["strategy=surrogate_evolution", "surrogate=lm", "strategy.n_sampled=4", "strategy.n_chosen=2",
       "strategy.refit_every=2", "search.first_generation=null", "surrogate.device=cpu"]


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs in the search."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    space = EinSpace(input_shape=(3, 8, 8))
    corpus = [space.sample(seed).long_string for seed in range(40)]
    model, tokenizer = tiny_encoder(corpus, hidden_size=32, num_layers=2, num_heads=2, max_length=512)
    path = tmp_path_factory.mktemp("tiny-lm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _config(model_dir, output_dir, *extra):
    return search_config(*ARM, f"surrogate.model_name_or_path={model_dir}", *extra, output_dir=output_dir)


def test_lm_gets_the_strings_and_the_papers_cadence_rf_keeps_its_own():
    lm = search_config("surrogate=lm")
    assert lm.encoding.name == "string" and lm.strategy.refit_every == 100 and lm.strategy.fit_on_archive is False
    assert search_config("surrogate=bert").strategy.refit_every == 100
    rf = search_config("surrogate=rf")
    assert rf.encoding.name == "graf_zcp" and rf.strategy.refit_every == 20 and rf.strategy.fit_on_archive is True
    assert search_config("surrogate=lm", "strategy.refit_every=7").strategy.refit_every == 7


def test_a_numeric_encoding_or_a_missing_checkpoint_is_refused(tmp_path, model_dir):
    cfg = _config(model_dir, tmp_path, "encoding=graf")
    with pytest.raises(SearchError, match="reads the architecture strings, not encoding=graf"):
        SearchRunner(cfg, run_dir_for(tmp_path, cfg)).run()
    cfg = _config(model_dir, tmp_path, f"surrogate.checkpoint={tmp_path / 'nothing'}")
    with pytest.raises(SearchError, match="surrogate.checkpoint=.*no such directory"):
        SearchRunner(cfg, run_dir_for(tmp_path, cfg)).run()
    assert not (run_dir_for(tmp_path, cfg) / "archive.jsonl").exists()


@pytest.mark.parametrize("strategy", ["surrogate_evolution", "surrogate_objective"])
def test_lm_search_runs_end_to_end(tmp_path, model_dir, strategy):
    extra = ["strategy.objective_steps=20", "strategy.min_improvement=-1"] if strategy == "surrogate_objective" else []
    cfg = _config(model_dir, tmp_path, f"strategy={strategy}", *extra)
    run_dir = run_dir_for(tmp_path, cfg)
    runner = SearchRunner(cfg, run_dir)
    assert runner.run()["iterations"] == 8
    assert isinstance(runner.surrogate, LanguageModelSurrogate)
    records = read_archive(run_dir / "archive.jsonl")
    scored = [r for r in records if r["origin"] in ("surrogate", "posthoc")]
    assert scored and all(isinstance(r["prediction"], float) for r in scored)
    k = runner.surrogate.predictor.fit_count
    assert k >= 2 and load_checkpoint(run_dir / "checkpoint.json")["strategy"]["surrogate"]["saved_fit"] == k
    assert sorted(p.name for p in (run_dir / "surrogate").iterdir()) == [f"fit-{k - 1}", f"fit-{k}"]
    # surrogate.checkpoint=<a saved fit>: another search starts from those fine-tuned weights.
    started = SearchRunner(_config(model_dir, tmp_path / "next", f"surrogate.checkpoint='{run_dir}/surrogate/fit-{k}'"),
                           tmp_path / "next")
    started._build()
    strings = [r["arch"] for r in records]
    assert started.surrogate.predict(strings).tolist() == runner.surrogate.predict(strings).tolist()


def test_killed_after_refits_resumes_with_the_saved_weights(tmp_path, model_dir, monkeypatch):
    reference = _config(model_dir, tmp_path / "ref")
    SearchRunner(reference, run_dir_for(tmp_path / "ref", reference)).run()
    expected = read_archive(run_dir_for(tmp_path / "ref", reference) / "archive.jsonl")

    cfg = _config(model_dir, tmp_path / "killed")
    run_dir = run_dir_for(tmp_path / "killed", cfg)
    fits, loads = [], []
    original_fit, original_load = LanguageModelPredictor.fit, SurrogateEvolution.load_state_dict

    def counting_fit(self, X, y):
        fits.append(self.fit_count + 1)
        return original_fit(self, X, y)

    def watched_load(self, state, archive):
        before = len(fits)
        original_load(self, state, archive)
        loads.append((len(fits) - before, self.surrogate.predictor.fit_count, state["surrogate"]["saved_fit"]))

    monkeypatch.setattr(LanguageModelPredictor, "fit", counting_fit)
    monkeypatch.setattr(SurrogateEvolution, "load_state_dict", watched_load)

    # 1. Killed between saving fit 2 and the checkpoint that would name it.
    original_surrogate_fit = LanguageModelSurrogate.fit

    def fit_then_die(self, features, targets):
        original_surrogate_fit(self, features, targets)
        if self.predictor.fit_count == 2:
            raise Killed

    monkeypatch.setattr(LanguageModelSurrogate, "fit", fit_then_die)
    with pytest.raises(Killed):
        SearchRunner(cfg, run_dir).run()
    assert (run_dir / "surrogate" / "fit-2").is_dir()
    assert load_checkpoint(run_dir / "checkpoint.json")["strategy"]["surrogate"]["saved_fit"] == 1
    monkeypatch.setattr(LanguageModelSurrogate, "fit", original_surrogate_fit)

    # 2. Resumed from fit 1 (fit 2 redone from its weights), then killed right after the
    #    checkpoint that names fit 3.
    original_save = runner_module.save_checkpoint

    def save_then_die(path, state):
        original_save(path, state)
        if state["strategy"]["surrogate"]["saved_fit"] == 3:
            raise Killed

    monkeypatch.setattr(runner_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        SearchRunner(cfg, run_dir).run()
    monkeypatch.setattr(runner_module, "save_checkpoint", original_save)

    # 3. Resumed from fit 3's saved weights, to the end.
    runner = SearchRunner(cfg, run_dir)
    assert runner.run()["iterations"] == 8
    assert loads == [(0, 1, 1), (0, 3, 3)]  # the named fit was loaded, nothing was refitted at load
    assert fits == [1, 2, 2, 3]  # fit 2 redone once (the kill came before its checkpoint); fit 3 not redone
    assert deterministic_view(read_archive(run_dir / "archive.jsonl")) == deterministic_view(expected)
    assert sorted(p.name for p in (run_dir / "surrogate").iterdir()) == ["fit-2", "fit-3"]


def test_an_archive_without_checkpoint_replays_the_fits_from_the_start(tmp_path, model_dir):
    """No checkpoint.json (killed before the first one, or moved away): the replay refits every
    fit from the pretrained weights in order, which gives the same weights and predictions."""
    cfg = _config(model_dir, tmp_path)
    run_dir = run_dir_for(tmp_path, cfg)
    SearchRunner(cfg, run_dir).run()
    before = read_archive(run_dir / "archive.jsonl")
    (run_dir / "checkpoint.json").unlink()
    (run_dir / "result.json").unlink()
    runner = SearchRunner(cfg, run_dir)
    assert runner.run()["iterations"] == 8
    assert read_archive(run_dir / "archive.jsonl") == before  # every prediction matched: nothing redone
    assert not (run_dir / "archive.redone.jsonl").exists() and runner.surrogate.predictor.fit_count == 3
