"""Each strategy end to end on a tiny mini_addnist search: archive, result and counting."""
import json
from pathlib import Path

import pandas as pd
import pytest
from search_helpers import run_dir_for, search_config

from nas.search.archive import read_archive
from nas.search.runner import SearchError, SearchRunner
from nas.space import EinSpace

CASES = [
    ("random_search", "none", []),
    ("regularised_evolution", "none", []),
    ("surrogate_evolution", "random", ["strategy.n_sampled=4", "strategy.n_chosen=2", "strategy.refit_every=2"]),
    ("rejection_filter", "random", ["strategy.n_sampled=6", "strategy.n_chosen=2", "strategy.refit_every=2"]),
    ("surrogate_objective", "random", ["strategy.objective_steps=30"]),
    ("surrogate_evolution", "rf", ["encoding=graf", "strategy.n_sampled=4", "strategy.n_chosen=2",
                                   "strategy.refit_every=2"]),
    ("rejection_filter", "xgb", ["encoding=graf_zcp", "strategy.n_sampled=6", "strategy.n_chosen=2",
                                 "strategy.refit_every=2"]),
]


@pytest.mark.parametrize("strategy, surrogate, extra", CASES)
def test_strategy_runs_and_records_everything(tmp_path, strategy, surrogate, extra):
    cfg = search_config(f"strategy={strategy}", f"surrogate={surrogate}", "search.first_generation=null", *extra)
    run_dir = run_dir_for(tmp_path, cfg)
    result = SearchRunner(cfg, run_dir).run()
    records = read_archive(run_dir / "archive.jsonl")
    ok = [r for r in records if r["status"] == "ok"]
    failed = [r for r in records if r["status"] != "ok"]

    assert [r["index"] for r in records] == list(range(len(records)))
    assert [r["iteration"] for r in ok] == list(range(len(ok)))
    assert all(r["iteration"] is None and r["reason"] for r in failed)
    assert all(0.0 < r["val_acc"] <= 1.0 for r in ok)
    space = EinSpace(input_shape=tuple(cfg.dataset.input_shape))
    assert all(space.parse(r["arch"]).num_params == r["num_params"] for r in records)
    if strategy == "surrogate_objective":
        assert 4 <= len(ok) <= 8 and all(r["origin"] == "posthoc" for r in ok[4:])
    else:
        assert len(ok) == 8 == result["iterations"]
    if strategy != "random_search":
        assert {r["origin"] for r in ok[:4]} == {"random"}
        evolved = {r["origin"] for r in ok[4:]}
        assert evolved <= ({"mutation", "fallback"} if surrogate == "none" else {"surrogate", "fallback", "posthoc"})
        assert all(r["parent"] is not None for r in ok[4:] if r["origin"] in ("mutation", "surrogate"))
    if surrogate == "random" and strategy != "surrogate_objective":
        chosen = [r for r in records if r["origin"] == "surrogate"]
        assert chosen and all(0.0 <= r["prediction"] < 1.0 for r in chosen)
    if surrogate in ("rf", "xgb"):  # a fitted predictor on features, written as the search goes
        chosen = [r for r in records if r["origin"] == "surrogate"]
        assert all(r["prediction"] is not None and r["seconds"]["encode"] >= 0 for r in chosen)
        features = pd.read_csv(run_dir / "features.csv")
        width = {"graf": 385, "graf_zcp": 392}[cfg.encoding.name]
        assert features.shape[1] == width + 2 and list(features["id"]) == [r["index"] for r in ok]
        assert list(features["accuracy"]) == [r["val_acc"] for r in ok]

    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["best"]["val_acc"] == max(r["val_acc"] for r in ok)
    assert saved["candidates"]["failed"] == len(failed)
    assert sum(saved["candidates"]["failed_by_status"].values()) == len(failed)
    assert saved["config"]["strategy"]["name"] == strategy
    assert (run_dir / "figures" / "best_so_far.png").stat().st_size > 0
    assert (run_dir / "checkpoint.json").exists()


def test_seeds_are_trained_once_and_copied(tmp_path):
    cfg = search_config("strategy=regularised_evolution", "surrogate=none", "strategy.seeds=resnet18",
                        "strategy.population_size=3", "search.budget=4", "trainer.memory_limit_mb=4096",
                        "search.first_generation=null")
    run_dir = run_dir_for(tmp_path, cfg)
    SearchRunner(cfg, run_dir).run()
    records = read_archive(run_dir / "archive.jsonl")
    assert [r["origin"] for r in records[:3]] == ["seed", "seed_copy", "seed_copy"]
    assert records[1]["val_acc"] == records[2]["val_acc"] == records[0]["val_acc"]
    assert records[1]["copy_of"] == 0 and records[1]["seconds"]["train"] == 0.0
    assert records[3]["origin"] in ("mutation", "fallback")


def test_budget_smaller_than_population_is_refused(tmp_path):
    cfg = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=3")
    with pytest.raises(SearchError, match="smaller than the population"):
        SearchRunner(cfg, run_dir_for(tmp_path, cfg)).run()


def test_surrogate_strategy_without_surrogate_is_refused(tmp_path):
    cfg = search_config("strategy=surrogate_evolution", "surrogate=none")
    with pytest.raises(SearchError, match="needs a surrogate"):
        SearchRunner(cfg, run_dir_for(tmp_path, cfg)).run()


def test_every_candidate_failing_stops_with_a_clear_message(tmp_path):
    cfg = search_config("strategy=random_search", "surrogate=none", "trainer.memory_limit_mb=0.001",
                        "search.max_consecutive_failures=5")
    run_dir = run_dir_for(tmp_path, cfg)
    with pytest.raises(SearchError, match="5 candidates in a row failed.*too_large"):
        SearchRunner(cfg, run_dir).run()
    records = read_archive(run_dir / "archive.jsonl")
    assert len(records) == 5 and {r["status"] for r in records} == {"too_large"}


def test_predictor_surrogate_without_encoding_is_refused(tmp_path):
    cfg = search_config("strategy=surrogate_evolution", "surrogate=rf", "encoding=none")
    with pytest.raises(SearchError, match="needs a numeric encoding"):
        SearchRunner(cfg, run_dir_for(tmp_path, cfg)).run()


def test_transfer_surrogate_trains_on_other_datasets_files(tmp_path):
    """tr_rf in a search: the other datasets' feature files (here synthetic GRAF rows) plus the run."""
    from surrogates.encodings import create_encoder

    space = EinSpace(input_shape=(3, 8, 8))
    encoder = create_encoder("graf")
    transfer = tmp_path / "transfer"
    transfer.mkdir()
    for dataset in ("mini_multnist", "other"):
        archs = [space.sample(1000 + i) for i in range(30)]
        frame = encoder.encode_frame(archs)
        frame.insert(0, "id", range(len(archs)))
        frame["accuracy"] = [0.1 + 0.01 * a.num_nodes for a in archs]
        frame.to_csv(transfer / f"{dataset}_seed=0.csv", index=False)
    (transfer / "mini_addnist_seed=0.csv").write_text("not,a,feature,file\n")  # the target: never read
    cfg = search_config("strategy=surrogate_evolution", "surrogate=tr_rf", "encoding=graf",
                        f"surrogate.transfer_dir={transfer}", "strategy.n_sampled=4", "strategy.n_chosen=2",
                        "strategy.refit_every=2", "search.first_generation=null")
    runner = SearchRunner(cfg, run_dir_for(tmp_path, cfg))
    result = runner.run()
    assert result["iterations"] == 8
    used = runner.surrogate.predictor.used_files_
    assert sorted(Path(f).name for f in used) == ["mini_multnist_seed=0.csv", "other_seed=0.csv"]
    assert runner.surrogate.predictor.n_transfer_rows_ == 60


@pytest.mark.parametrize("group", ["strategy", "surrogate", "encoding"])
def test_every_config_option_composes_and_builds(tmp_path, group):
    """Each registered name has a config file, and each composes into a runnable search set-up."""
    from nas.search.strategies import list_strategies
    from nas.search.surrogate import list_surrogates
    from surrogates.encodings import list_encoders

    conf = Path(__file__).resolve().parents[1] / "conf" / group
    options = sorted(p.stem for p in conf.glob("*.yaml"))
    registered = {"strategy": list_strategies(), "surrogate": list_surrogates(),
                  "encoding": [*list_encoders(), "none"]}[group]
    assert set(options) <= set(registered) and set(registered) - {"random"} <= set(options) | {"random"}
    for option in options:
        overrides = {"strategy": [f"strategy={option}", "surrogate=random"],
                     "surrogate": [f"surrogate={option}", "encoding=graf",
                                   "strategy=" + ("regularised_evolution" if option == "none" else "surrogate_evolution")],
                     "encoding": ["surrogate=rf", f"encoding={option}"]}[group]
        if option in ("tr_rf", "lm", "bert") or (group == "encoding" and option in ("none", "string")):
            continue  # need transfer files / a language model (tests/test_search_lm.py) / are not numeric:
            # covered by their own tests (test_search_strategies' tr_rf test, test_lm_predictor)
        cfg = search_config(*overrides)
        runner = SearchRunner(cfg, tmp_path / option)
        runner._build()
        assert runner.strategy.surrogate is runner.surrogate
