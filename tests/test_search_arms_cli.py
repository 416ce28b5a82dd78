"""The paper's arms through the CLI: both orders, and two jobs started together, share one trained
first generation (seed_system.md §3.5)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from search_helpers import FAST

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
TINY = [o for o in FAST if not o.startswith("search.budget")] + ["search.budget=6"]
ARMS = {"random": ["surrogate=random"], "rf": ["surrogate=rf", "encoding=graf"]}


def _command(tmp_path: Path, arm: str) -> list[str]:
    return [sys.executable, str(REPO / "search.py"), *TINY, *ARMS[arm], f"paths.output_dir={tmp_path}",
            "strategy.n_sampled=4", "strategy.n_chosen=2"]


def _records(tmp_path: Path, arm: str) -> list[dict]:
    encoding = "graf" if arm == "rf" else "none"
    run = tmp_path / "search" / "mini_addnist" / f"surrogate_evolution-{arm}-{encoding}" / "seed=0"
    assert json.loads((run / "result.json").read_text())["iterations"] == 6
    return [json.loads(line) for line in (run / "archive.jsonl").read_text().splitlines()]


def _initial(records: list[dict]) -> list[dict]:
    end = next(r["index"] for r in records if r["iteration"] == 3) + 1  # population 4
    return records[:end]


def _shared_file(tmp_path: Path) -> Path:
    folder = tmp_path / "first_generation" / "mini_addnist"
    files = list(folder.glob("*.json"))
    assert len(files) == 1 and list(folder.glob("*.lock")) == [] and list(folder.glob(".*tmp")) == []
    return files[0]


@pytest.mark.parametrize("first, second", [("random", "rf"), ("rf", "random")])
def test_arms_in_either_order_start_from_one_population(tmp_path, first, second):
    for arm in (first, second):
        proc = subprocess.run(_command(tmp_path, arm), env=ENV, cwd=REPO, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loaded the first generation" in proc.stdout + proc.stderr
    shared = json.loads(_shared_file(tmp_path).read_text())["records"]
    # Copied, not retrained: the timings are equal too.
    assert _initial(_records(tmp_path, first)) == _initial(_records(tmp_path, second)) == shared


def test_two_jobs_started_together_train_the_first_generation_once(tmp_path):
    procs = [subprocess.Popen(_command(tmp_path, arm), env=ENV, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for arm in ("random", "rf")]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    # One trains it; the other loads it (after waiting on the lock when they overlap).
    assert sum("loaded the first generation" in out for out in outputs) == 1
    shared = json.loads(_shared_file(tmp_path).read_text())["records"]
    assert _initial(_records(tmp_path, "random")) == _initial(_records(tmp_path, "rf")) == shared
