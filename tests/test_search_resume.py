"""Resume: killed runs end with the uninterrupted archive; bad checkpoints and changed configs
are clear errors; the first generation is shared without changing results."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from search_helpers import FAST, deterministic_view, run_dir_for, search_config

from nas.search.archive import read_archive
from nas.search.checkpoint import CheckpointError
from nas.search.runner import SearchError, SearchRunner

REPO = Path(__file__).resolve().parents[1]
ARM = ["strategy=surrogate_evolution", "surrogate=random", "strategy.n_sampled=4", "strategy.n_chosen=2",
       "strategy.refit_every=2"]


def _search_command(output_dir: Path) -> list[str]:
    return [sys.executable, str(REPO / "search.py"), *FAST, *ARM, f"paths.output_dir={output_dir}"]


def _env():
    return {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _archive_len(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_killed_search_resumes_to_the_uninterrupted_archive(tmp_path):
    reference = subprocess.run(_search_command(tmp_path / "ref"), env=_env(), capture_output=True, text=True,
                               timeout=300, cwd=REPO)
    assert reference.returncode == 0, reference.stderr[-2000:]
    run = Path("mini_addnist/surrogate_evolution-random-none/seed=0")
    expected = read_archive(tmp_path / "ref" / "search" / run / "archive.jsonl")

    archive = tmp_path / "killed" / "search" / run / "archive.jsonl"
    rng, kills = random.Random(7), 0
    for kill_at in (2, 5, 9):  # archive lengths after which to kill, plus a random delay
        proc = subprocess.Popen(_search_command(tmp_path / "killed"), env=_env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while proc.poll() is None and _archive_len(archive) < kill_at and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    final = subprocess.run(_search_command(tmp_path / "killed"), env=_env(), capture_output=True, text=True,
                           timeout=300, cwd=REPO)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 2
    assert deterministic_view(read_archive(archive)) == deterministic_view(expected)
    assert json.loads((archive.parent / "result.json").read_text())["iterations"] == 8


def test_corrupted_checkpoint_is_a_clear_error_and_restart_recovers(tmp_path):
    cfg = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=5")
    run_dir = run_dir_for(tmp_path, cfg)
    SearchRunner(cfg, run_dir).run()
    (run_dir / "checkpoint.json").write_text('{"sha256": "0", "body": "{\\"version\\": 1')
    with pytest.raises(CheckpointError, match="search.restart=true"):
        SearchRunner(cfg, run_dir).run()
    restarted = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=5",
                              "search.restart=true")
    result = SearchRunner(restarted, run_dir).run()
    assert result["iterations"] == 5
    aside = list(run_dir.glob("restarted-*"))
    assert len(aside) == 1 and (aside[0] / "archive.jsonl").exists() and (aside[0] / "checkpoint.json").exists()


def test_changed_config_is_refused_but_a_larger_budget_extends_the_run(tmp_path):
    cfg = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=5")
    run_dir = run_dir_for(tmp_path, cfg)
    SearchRunner(cfg, run_dir).run()
    first = read_archive(run_dir / "archive.jsonl")
    changed = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=5",
                            "trainer.lr=0.1", "strategy.tournament_size=3")
    with pytest.raises(SearchError) as info:
        SearchRunner(changed, run_dir).run()
    assert "trainer.lr: 0.04 -> 0.1" in str(info.value) and "strategy.tournament_size: 10 -> 3" in str(info.value)
    longer = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=7")
    assert SearchRunner(longer, run_dir).run()["iterations"] == 7
    extended = read_archive(run_dir / "archive.jsonl")
    assert extended[: len(first)] == first


def test_a_run_recorded_before_a_new_key_names_the_value_that_resumes_it(tmp_path):
    cfg = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=5")
    run_dir = run_dir_for(tmp_path, cfg)
    SearchRunner(cfg, run_dir).run()
    experiment = json.loads((run_dir / "experiment.json").read_text())
    del experiment["trainer"]["nan_policy"]  # as written before trainer.nan_policy existed
    (run_dir / "experiment.json").write_text(json.dumps(experiment))
    with pytest.raises(SearchError, match="trainer.nan_policy: 'fail' -> 'previous_epoch'"):
        SearchRunner(cfg, run_dir).run()
    old = search_config("strategy=regularised_evolution", "surrogate=none", "search.budget=5",
                        "trainer.nan_policy=fail")
    assert SearchRunner(old, run_dir).run()["iterations"] == 5


def test_first_generation_is_shared_and_changes_nothing(tmp_path):
    shared = tmp_path / "shared"
    a = search_config(*ARM, output_dir=shared)
    SearchRunner(a, run_dir_for(tmp_path / "shared", a)).run()
    caches = list((shared / "first_generation" / "mini_addnist").glob("*.json"))
    assert len(caches) == 1

    b = search_config("strategy=regularised_evolution", "surrogate=none", output_dir=shared)
    b_dir = run_dir_for(tmp_path / "shared", b)
    SearchRunner(b, b_dir).run()
    alone = search_config("strategy=regularised_evolution", "surrogate=none", "search.first_generation=null")
    alone_dir = run_dir_for(tmp_path / "alone", alone)
    SearchRunner(alone, alone_dir).run()

    records_a = read_archive(run_dir_for(tmp_path / "shared", a) / "archive.jsonl")
    records_b = read_archive(b_dir / "archive.jsonl")
    n_initial = next(r["index"] for r in records_a if r["iteration"] == 3) + 1
    assert records_b[:n_initial] == records_a[:n_initial]  # copied, not retrained
    assert deterministic_view(records_b) == deterministic_view(read_archive(alone_dir / "archive.jsonl"))
