"""evaluate.py task=features: one table per run and settings (surrogates/feature_tables.py).

A tiny search with a feature surrogate writes <run>/features.csv; task=features must reproduce it
byte for byte with the search's settings, reuse it, and never overwrite it with another table.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from search_helpers import FAST

from nas.search.identity import derive_seed
from surrogates.feature_tables import (
    FEATURES_FILE,
    read_settings,
    requested_settings,
    run_features,
    search_settings,
    settings_file,
)

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
ARM = ["strategy=surrogate_evolution", "surrogate=rf", "strategy.n_sampled=4", "strategy.n_chosen=2",
       "strategy.refit_every=2", "search.first_generation=null"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> Path:
    """A finished tiny search (rf on graf_zcp, proxy batch 64 from the mini dataset's quick block)."""
    out = tmp_path_factory.mktemp("search")
    proc = subprocess.run([sys.executable, str(REPO / "search.py"), *FAST, *ARM, f"paths.output_dir={out}"],
                          env=ENV, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = out / "search" / "mini_addnist" / "surrogate_evolution-rf-graf_zcp" / "seed=0"
    assert (run / FEATURES_FILE).exists()
    return run


def _copy(run: Path, dest: Path, features: bool = True) -> Path:
    shutil.copytree(run, dest)
    if not features:
        (dest / FEATURES_FILE).unlink()
        settings_file(dest / FEATURES_FILE).unlink(missing_ok=True)
    return dest


def _evaluate(*args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), "task=features", "logger=none", *args],
                          env=ENV, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_task_features_reproduces_the_search_table_byte_for_byte(search_run, tmp_path):
    original = (search_run / FEATURES_FILE).read_bytes()
    fresh = _copy(search_run, tmp_path / "fresh", features=False)
    proc = _evaluate(f"run={fresh}", "export_dir=null", f"paths.output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wrote" in proc.stdout
    assert (fresh / FEATURES_FILE).read_bytes() == original
    experiment = json.loads((search_run / "experiment.json").read_text())
    settings = read_settings(fresh / FEATURES_FILE)
    assert settings == search_settings(experiment)
    assert settings["seed"] == derive_seed(0, "surrogate") and settings["batch_size"] == 64

    # the search writes the settings next to its table: reused, untouched, exported as is
    assert read_settings(search_run / FEATURES_FILE) == settings
    kept = _copy(search_run, tmp_path / "kept")
    proc = _evaluate(f"run={kept}", "export_dir=null", f"paths.output_dir={tmp_path}")
    assert proc.returncode == 0 and "reused" in proc.stdout, proc.stderr[-2000:]
    assert (kept / FEATURES_FILE).read_bytes() == original

    # a table from before the settings file existed: recognised by its rows, reused, exported
    settings_file(kept / FEATURES_FILE).unlink()
    proc = _evaluate(f"run={kept}", f"export_dir={tmp_path / 'transfer'}", f"paths.output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "is the search's table" in proc.stdout and "reused" in proc.stdout
    assert (kept / FEATURES_FILE).read_bytes() == original
    assert read_settings(kept / FEATURES_FILE) == settings
    assert (tmp_path / "transfer" / "mini_addnist_seed=0.csv").read_bytes() == original


def test_other_settings_never_overwrite_features_csv(search_run, tmp_path):
    run = _copy(search_run, tmp_path / "run")
    original = (run / FEATURES_FILE).read_bytes()
    first = run_features(run)
    assert first.action == "reused" and first.table == run / FEATURES_FILE

    ours = run_features(run, {"fisher_mode": "ours"})
    assert ours.table.name.startswith("features-graf_zcp-") and ours.action == "wrote"
    assert any("made with other settings" in n and "fisher_mode" in n for n in ours.notes)
    assert (run / FEATURES_FILE).read_bytes() == original
    assert read_settings(ours.table)["options"]["fisher_mode"] == "ours"
    a, b = pd.read_csv(run / FEATURES_FILE), pd.read_csv(ours.table)
    assert list(a.columns) == list(b.columns) and (a["id"] == b["id"]).all()
    assert not np.allclose(a["fisher"], b["fisher"], equal_nan=True)
    graf = [c for c in a.columns if c.startswith("cnt_")]
    assert (a[graf] == b[graf]).all().all()
    assert run_features(run, {"fisher_mode": "ours"}).action == "reused"

    for other in (run_features(run, seed=5), run_features(run, {"batch_size": 32}),
                  run_features(run, {"name": "graf"})):
        assert other.table != run / FEATURES_FILE and other.table.exists()
        assert (run / FEATURES_FILE).read_bytes() == original
    assert len({p.name for p in run.glob("features*.csv")}) == 5


def test_unknown_table_is_kept_and_a_grown_archive_updates(search_run, tmp_path):
    run = _copy(search_run, tmp_path / "run")
    frame = pd.read_csv(run / FEATURES_FILE)
    forged = frame.assign(fisher=frame["fisher"] * 2)
    forged.to_csv(run / FEATURES_FILE, index=False)  # e.g. written by an older task=features
    settings_file(run / FEATURES_FILE).unlink()  # ... which wrote no settings file
    forged_bytes = (run / FEATURES_FILE).read_bytes()
    result = run_features(run)
    assert result.table.name.startswith("features-graf_zcp-") and "unknown origin" in result.notes[0]
    assert (run / FEATURES_FILE).read_bytes() == forged_bytes and not settings_file(run / FEATURES_FILE).exists()
    pd.testing.assert_frame_equal(pd.read_csv(result.table), frame, rtol=1e-5)

    # same settings, fewer rows than the archive's trained candidates: recomputed and completed
    run2 = _copy(search_run, tmp_path / "run2")
    assert run_features(run2).action == "reused"
    frame.iloc[:-2].to_csv(run2 / FEATURES_FILE, index=False)
    grown = run_features(run2)
    assert grown.action == "updated" and grown.table == run2 / FEATURES_FILE
    pd.testing.assert_frame_equal(pd.read_csv(run2 / FEATURES_FILE), frame, rtol=1e-5)


def test_export_refuses_another_table(search_run, tmp_path):
    run = _copy(search_run, tmp_path / "run")
    transfer = tmp_path / "transfer"
    assert run_features(run, export_dir=transfer).exported == transfer / "mini_addnist_seed=0.csv"
    exported = (transfer / "mini_addnist_seed=0.csv").read_bytes()
    proc = _evaluate(f"run={run}", "encoding.fisher_mode=ours", f"export_dir={transfer}",
                     f"paths.output_dir={tmp_path}")
    assert proc.returncode == 1
    error = proc.stderr.strip().splitlines()
    assert len(error) == 1 and "already holds another table" in error[0] and "export_dir=" in error[0]
    assert "kept" in proc.stdout and "features-graf_zcp-" in proc.stdout
    assert (transfer / "mini_addnist_seed=0.csv").read_bytes() == exported
    assert run_features(run, export_dir=transfer).export_error is None  # the same table again: fine

    other = _copy(search_run, tmp_path / "other_run", features=False)  # same dataset and seed, shorter
    lines = (other / "archive.jsonl").read_text().splitlines(keepends=True)
    while json.loads(lines[-1])["status"] not in ("ok", "nan", "zero_acc"):
        lines.pop()
    (other / "archive.jsonl").write_text("".join(lines[:-1]))
    result = run_features(other, export_dir=transfer)
    assert result.action == "wrote" and result.exported is None
    assert f"from run {run.resolve()}" in result.export_error
    assert (transfer / "mini_addnist_seed=0.csv").read_bytes() == exported


def test_requested_settings_defaults():
    experiment = {"seed": 3, "surrogate": {"name": "random"},
                  "encoding": {"name": "none", "batch_size": 64}}
    assert search_settings(experiment) is None
    s = requested_settings(experiment)  # a run without features: the paper's graf_zcp, the run's batch
    assert s == {"encoding": "graf_zcp", "batch_size": 64, "seed": derive_seed(3, "surrogate"),
                 "options": {"extra": False, "fisher_mode": "foresight", "legacy_output_id": False}}
    old = {"seed": 1, "surrogate": {"name": "rf"},
           "encoding": {"name": "zcp", "extra": False, "batch_size": 256}}  # before fisher_mode existed
    assert search_settings(old)["options"]["fisher_mode"] == "ours"
    assert requested_settings(old) == search_settings(old)
    assert requested_settings(old, {"name": "graf_zcp"})["options"]["fisher_mode"] == "foresight"
    assert requested_settings(old, {"name": "graf"}) == {"encoding": "graf", "options": {"legacy_output_id": False}}
    assert requested_settings(old, {"batch_size": None, "fisher_mode": None}, seed=7)["seed"] == 7
    with pytest.raises(ValueError, match="no numeric feature table"):
        requested_settings(old, {"name": "string"})
