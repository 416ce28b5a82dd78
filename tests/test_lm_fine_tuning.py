"""Offline fine-tuning of the language-model surrogate (train.py task=surrogate) and its evaluation
(evaluate.py task=surrogate surrogate=lm): the data it reads, the leave-one-out split, the
on-the-fly protocol, and the CLI from fine-tuning to a scored checkpoint.

Offline and fast: synthetic run directories (tests/synthetic_strings.py) and a tiny encoder
written with save_pretrained; nothing is downloaded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_strings import synthetic_archive, write_string_run

from surrogates.feature_tables import FeatureConflict, _export_strings
from surrogates.fine_tuning import language_model, split_data
from surrogates.metrics import kendall_tau
from surrogates.normalisation import normalise
from surrogates.predictors.language_model import short_from_long, tiny_encoder
from surrogates.protocols import on_the_fly
from surrogates.string_tables import load_string_archive, read_paper_csv

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
# dataset -> (scale, offset): the datasets differ in how hard they are, the ranking rule is shared
DATASETS = {"alpha": (0.5, 0.1), "beta": (0.2, 0.6), "gamma": (1.0, 0.0)}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """<sweep>/<dataset>/re/seed=<s>/: alpha and beta with two seeds of 50, gamma one of 60."""
    root = tmp_path_factory.mktemp("sweep")
    for k, (name, (scale, offset)) in enumerate(DATASETS.items()):
        for seed in (0, 1) if name != "gamma" else (0,):
            write_string_run(root / name / "re" / f"seed={seed}", name, seed, 60 if name == "gamma" else 50,
                             data_seed=10 * k + seed, scale=scale, offset=offset, failed_every=9)
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    corpus = synthetic_archive(300, 99)[0]  # the grammar's few words: every synthetic string's vocabulary
    model, tokenizer = tiny_encoder(corpus, hidden_size=32, num_layers=2, num_heads=2, max_length=512)
    path = tmp_path_factory.mktemp("tiny-lm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _lm_node(model_dir, **extra):
    return {"_target_": "surrogates.predictors.LanguageModelPredictor", "_partial_": True, "name": "lm",
            "model_name_or_path": str(model_dir), "device": "cpu", "n_jobs": 1, "learning_rate": 2e-3,
            "epochs": 2, "train_batch_size": 2, "checkpoint": None, "refit_every": 100, **extra}


# ------------------------------------------------------------------------------ data
def test_every_source_gives_the_same_tables(sweep, tmp_path):
    run = sweep / "alpha" / "re" / "seed=0"
    one = load_string_archive(run)
    table = one["alpha"][0]
    records = [json.loads(line) for line in (run / "archive.jsonl").read_text().splitlines()]
    trained = [r for r in records if r["status"] != "too_slow"]
    assert list(table["id"]) == [r["index"] for r in trained]  # search order, rejected candidates left out
    assert list(table["accuracy"]) == [r["val_acc"] for r in trained] and (table["accuracy"] == 0).sum() == 5
    assert list(table["arch"]) == [short_from_long(r["arch"]) for r in trained]

    everything = load_string_archive(sweep)  # a sweep dir: every run below it
    assert {d: sorted(runs) for d, runs in everything.items()} == {"alpha": [0, 1], "beta": [0, 1], "gamma": [0]}
    pd.testing.assert_frame_equal(everything["alpha"][0], table)

    exports = tmp_path / "transfer"  # our exports, in the paper's layout
    exports.mkdir()
    for dataset, runs in everything.items():
        for seed in runs:
            _export_strings(sweep / dataset / "re" / f"seed={seed}", exports / f"{dataset}_seed={seed}.strings.csv")
    exported = pd.read_csv(exports / "alpha_seed=0.strings.csv")
    assert list(exported.columns) == ["arch", "arch_long", "acc", "dataset", "seed", "id"]
    assert set(exported["seed"]) == {"seed=0"}
    again = load_string_archive(exports)
    for dataset, runs in everything.items():
        for seed, frame in runs.items():
            pd.testing.assert_frame_equal(again[dataset][seed], frame, check_dtype=False)
    with pytest.raises(FeatureConflict, match="another run's architecture strings"):  # never overwritten
        _export_strings(sweep / "beta" / "re" / "seed=0", exports / "alpha_seed=0.strings.csv")

    # the paper's multi-task CSV: seed as "seed=<n>", long strings only (short ones derived)
    paper = exported.drop(columns=["arch", "id"]).rename(columns={"acc": "acc"})
    paper.to_csv(tmp_path / "multitask.csv", index=False)
    read = read_paper_csv(tmp_path / "multitask.csv")
    assert list(read["alpha"][0]["arch"]) == list(table["arch"]) and list(read["alpha"][0]["id"]) == list(range(len(table)))
    task_dir = tmp_path / "cifar10_v2.21"
    task_dir.mkdir()
    exported[["arch", "arch_long", "acc"]].to_csv(task_dir / "train.csv", index=False)
    assert list(read_paper_csv(task_dir / "train.csv")) == ["cifar10_v2.21"]  # the paper's <task>/train.csv

    with pytest.raises(ValueError, match="alpha seed 0 comes from two sources"):
        load_string_archive([run, exports])
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_string_archive(tmp_path / "missing")
    exported[["arch", "acc"]].to_csv(tmp_path / "short_only.csv", index=False)
    with pytest.raises(ValueError, match="only short strings"):
        load_string_archive(tmp_path / "short_only.csv")


@pytest.mark.parametrize("policy", ["ecdf", "minmax"])
def test_leave_one_out_leaves_the_target_out_and_normalises_each_dataset(sweep, policy):
    archive = load_string_archive(sweep)
    data = split_data(archive, target="gamma", policy=policy, holdout=0.1, seed=3)
    assert data.mode == "leave_one_out" and data.policy == policy
    assert "gamma" not in set(data.train["dataset"]) | set(data.selection["dataset"])
    pooled = pd.concat([data.train, data.selection])
    assert len(pooled) == sum(int((t["accuracy"] > 0).sum()) for d in ("alpha", "beta") for t in archive[d].values())
    for dataset in ("alpha", "beta"):  # each source dataset on its own scale, both seeds together
        values = pooled.loc[pooled["dataset"] == dataset, "accuracy"]
        raw = pd.concat(list(archive[dataset].values()))["accuracy"]
        expected = normalise(raw[raw > 0].to_numpy(), policy)
        np.testing.assert_allclose(np.sort(values), np.sort(expected))
        assert values.max() <= 1.0 and (values.min() == 0.0 if policy == "minmax" else values.min() > 0)
    raw = pd.concat(list(archive["gamma"].values()))  # evaluation: the target raw, zeros kept
    assert list(data.evaluation["accuracy"]) == list(raw["accuracy"]) and (data.evaluation["accuracy"] == 0).any()
    assert len(data.selection) == round(0.1 * len(pooled))
    assert not set(zip(data.selection["dataset"], data.selection["seed"], data.selection["id"], strict=True)) & \
        set(zip(data.train["dataset"], data.train["seed"], data.train["id"], strict=True))

    single = split_data({"alpha": archive["alpha"]}, eval_archive={"beta": archive["beta"]}, select_on_eval=True)
    assert single.mode == "single" and single.policy == "raw" and single.selection is None
    assert single.selector()[0] == "evaluation" and set(single.train["dataset"]) == {"alpha"}
    with pytest.raises(ValueError, match="select_on_eval=true selects on the evaluation set, and there is none"):
        split_data(archive, select_on_eval=True)
    with pytest.raises(ValueError, match="target=delta: no run of that dataset"):
        split_data(archive, target="delta")


def test_on_the_fly_fits_one_continuing_model_per_chunk(sweep, model_dir):
    frame = load_string_archive(sweep / "gamma")["gamma"][0]
    made = []

    def factory():
        made.append(language_model(_lm_node(model_dir), seed=0))
        return made[-1]

    rows = on_the_fly(frame, factory, chunk_size=20)
    assert len(made) == 1 and made[0].fit_count == 2  # one model, fitted on chunks 0 and 1, continuing
    assert list(rows["chunk"]) == [1, 2] and list(rows["n_test"]) == [20, 20]
    assert list(rows["n_train"]) == [int((frame["accuracy"].iloc[i:i + 20] > 0).sum()) for i in (0, 20)]
    untouched = on_the_fly(frame, lambda: language_model(_lm_node(model_dir), seed=0), chunk_size=20, finetune=False)
    assert list(untouched["n_train"]) == [0, 0]
    with pytest.raises(ValueError, match="predicts nothing before a fit"):
        numeric = pd.DataFrame({"f": np.arange(40.0), "accuracy": np.linspace(0, 1, 40)})
        on_the_fly(numeric, "rf", chunk_size=20, finetune=False)
    with pytest.raises(ValueError, match="surrogate=rf is not a language model"):
        language_model({"_target_": "surrogates.predictors.sklearn_models.RandomForestPredictor", "_partial_": True,
                        "name": "rf"}, seed=0)


# ------------------------------------------------------------------------------ the CLI
def _run(script, *args):
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)


def test_fine_tune_leave_one_out_then_score_the_checkpoint(sweep, model_dir, tmp_path, caplog):
    model = [f"surrogate.model_name_or_path={model_dir}", "surrogate.device=cpu", "surrogate.learning_rate=2e-3",
             f"paths.output_dir={tmp_path}"]
    done = _run("train.py", "task=surrogate", f"data={sweep}", "target=gamma", "surrogate.offline_epochs=3",
                "logger=csv", "progress=false", *model)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = Path(done.stdout.strip().splitlines()[-1].split("-> ")[-1])
    assert checkpoint.parent.parent.name == "lm-gamma" and checkpoint.name == "checkpoint"
    for name in ("model/config.json", "model/model.safetensors", "model/tokenizer.json", "predictor.json",
                 "info.json", "predictions.csv", "predictions.png"):
        assert (checkpoint / name).is_file(), name
    info = json.loads((checkpoint / "info.json").read_text())
    assert info["mode"] == "leave_one_out" and info["target"] == "gamma" and info["policy"] == "ecdf"
    assert (info["epochs"], info["batch_size"], info["selected_on"]) == (3, 2, "selection")
    assert {s["dataset"] for s in info["sources"] if s["role"] == "train"} == {"alpha", "beta"}
    assert [h["epoch"] for h in info["history"]] == [1, 2, 3] and 1 <= info["epoch"] <= 3
    best = max(info["history"], key=lambda h: h["selection/kendall_tau"])
    assert info["epoch"] == best["epoch"]  # the best epoch on the held-out training rows is kept
    predictions = pd.read_csv(checkpoint / "predictions.csv")
    evaluation = predictions[predictions["split"] == "evaluation"]
    assert set(evaluation["dataset"]) == {"gamma"} and len(evaluation) == 60
    assert info["metrics"]["evaluation"]["kendall_tau"] == pytest.approx(kendall_tau(evaluation["pred"],
                                                                                     evaluation["true"]))
    assert info["metrics"]["evaluation"]["kendall_tau"] > 0.2, info["metrics"]  # learnt the shared rule
    # the checkpoint predicts what predictions.csv says (weights and tokenizer round-trip)
    loaded = language_model(_lm_node(model_dir, checkpoint=str(checkpoint)), seed=0)
    gamma = load_string_archive(sweep / "gamma")["gamma"][0]
    np.testing.assert_allclose(loaded.predict(gamma), evaluation["pred"], rtol=1e-5, atol=1e-6)
    language_model(_lm_node(model_dir, checkpoint=str(checkpoint), text="short"), seed=0)
    assert "fine-tuned on text=long strings but this model reads text=short" in caplog.text

    scored = _run("evaluate.py", "task=surrogate", "surrogate=lm", f"checkpoint={checkpoint}", "protocol=on_the_fly",
                  f"data={sweep}", "chunk_size=20", "finetune=false", "logger=none", *model)
    assert scored.returncode == 0, scored.stderr[-3000:]
    results = pd.read_csv(Path(scored.stdout.strip().splitlines()[-1].split("-> ")[-1]) / "results.csv")
    assert set(results["dataset"]) == {"gamma"}  # alpha and beta trained the checkpoint: not scored
    assert set(results["predictor"]) == {"lm[checkpoint, no tuning]"} and list(results["chunk"]) == [1, 2]

    bad = _run("train.py", "task=surrogate", f"data={tmp_path / 'nothing'}", "logger=none", *model)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("train.py: error: ")
    assert "no such file or directory" in bad.stderr and "Traceback" not in bad.stderr
