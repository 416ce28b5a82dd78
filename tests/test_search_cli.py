"""search.py as a user runs it: clean errors for bad names and budgets; the README's main job, then
the baseline arm that shares its first generation."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / "search.py"), *args], env=ENV, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_unknown_strategy_lists_the_available_ones(tmp_path):
    proc = _run("strategy=evolutionn", f"paths.output_dir={tmp_path}")
    assert proc.returncode != 0
    assert "regularised_evolution" in proc.stderr and "surrogate_evolution" in proc.stderr


def test_unknown_surrogate_lists_the_available_ones(tmp_path):
    proc = _run("surrogate=gbdt", f"paths.output_dir={tmp_path}")
    assert proc.returncode != 0 and "random" in proc.stderr and "none" in proc.stderr


def test_budget_below_population_exits_with_an_explanation(tmp_path):
    proc = _run("search.budget=5", "strategy.population_size=10", "logger=none", f"paths.output_dir={tmp_path}")
    assert proc.returncode == 1
    assert "budget 5 is smaller than the population (10)" in proc.stderr
    assert "Traceback" not in proc.stderr


def _initial_population(run: Path, population: int) -> list[dict]:
    records = [json.loads(line) for line in (run / "archive.jsonl").read_text().splitlines()]
    end = next(r["index"] for r in records if r["iteration"] == population - 1) + 1
    return records[:end]


def test_default_search_then_the_baseline_arm_share_the_first_generation(tmp_path):
    """The README's main job as written (quick rf search on the embedded data), then the paper's RE
    baseline (surrogate=random) on the same dataset and seed: it loads the trained first generation."""
    proc = _run(f"paths.output_dir={tmp_path}", "logger=csv", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "search" / "mini_addnist" / "surrogate_evolution-rf-graf_zcp" / "seed=0"
    result = json.loads((run / "result.json").read_text())
    assert result["iterations"] == 40 and result["best"]["val_acc"] > 0.1
    assert (run / "metrics.jsonl").exists() and (run / "figures" / "accuracy_per_iteration.png").exists()
    features = (run / "features.csv").read_text().splitlines()
    assert features[0].startswith("id,cnt_sequential_module") and features[0].endswith("synflow,accuracy")
    assert len(features) - 1 >= result["iterations"]
    refits = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("surrogate/fit_seconds" in row for row in refits)

    # the baseline arm only needs a few iterations past the shared population (12) to show the sharing
    baseline = _run(f"paths.output_dir={tmp_path}", "logger=csv", "surrogate=random", "search.budget=16",
                    timeout=900)
    assert baseline.returncode == 0, baseline.stderr[-3000:]
    assert "loaded the first generation" in baseline.stdout + baseline.stderr
    re_run = tmp_path / "search" / "mini_addnist" / "surrogate_evolution-random-none" / "seed=0"
    assert json.loads((re_run / "result.json").read_text())["iterations"] == 16
    assert _initial_population(re_run, 12) == _initial_population(run, 12)  # copied, timings included
    assert list((tmp_path / "first_generation" / "mini_addnist").glob("*.lock")) == []
