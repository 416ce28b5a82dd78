"""evaluate.py task=report: the sweep report's numbers against a synthetic sweep worked out by hand.

The sweep (values are multiples of 1/8, so means and ties are exact in floating point):

| dataset | arm A (rf, 2-3 seeds)     | arm B (random)   | arm C (none)    |
|---------|---------------------------|------------------|-----------------|
| d1      | best 0.5, 0.75            | 0.625, 0.625     | 0.25, 0.5       |
| d2      | best 0.25, 0.5, 0.75      | 0.875, 0.625     | 0.5, 0.5        |

Means ± SE (sample std / sqrt(n)): d1: A 0.625 ± 0.125, B 0.625 ± 0, C 0.375 ± 0.125;
d2: A 0.5 ± 0.25/sqrt(3), B 0.75 ± 0.125, C 0.5 ± 0. Ranks (1 = best, ties averaged): d1 A 1.5,
B 1.5, C 3; d2 B 1, A 2.5, C 2.5; average A 2.0, B 1.25, C 2.75.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas.report import tables
from nas.report.collect import collect_runs
from nas.report.document import mean_se_cell
from nas.report.task import build_report
from nas.search.aggregate import aggregate_sweep

REPO = Path(__file__).resolve().parents[1]
A, B, C = "surrogate_evolution-rf-graf_zcp", "surrogate_evolution-random-none", "regularised_evolution-none-none"


def ok(acc, prediction=None, origin="mutation"):
    return {"val_acc": acc, "status": "ok", "prediction": prediction, "origin": origin}


def failed(status, prediction=None, acc=None):
    return {"val_acc": acc, "status": status, "prediction": prediction, "origin": "mutation"}


def write_run(root, dataset, arm, seed, candidates, wall=None, final=None):
    """A run dir as a search leaves it: archive.jsonl, experiment.json, result.json when ``wall``
    is given (finished), and final/result.json when ``final`` is."""
    run = root / dataset / arm / f"seed={seed}"
    run.mkdir(parents=True)
    lines, iteration = [], 0
    for index, candidate in enumerate(candidates):
        counted = candidate["status"] == "ok"
        lines.append(json.dumps({"index": index, "iteration": iteration if counted else None, "arch": "x",
                                 "reason": "", "parent": None, "num_params": 10, "seed": index,
                                 "seconds": {"sample": 0.5, "train": 1.5}, **candidate}))
        iteration += counted
    (run / "archive.jsonl").write_text("\n".join(lines) + "\n")
    strategy, surrogate, encoding = arm.split("-")
    (run / "experiment.json").write_text(json.dumps({
        "dataset": {"name": dataset}, "strategy": {"name": strategy}, "surrogate": {"name": surrogate},
        "encoding": {"name": encoding}, "seed": seed}))
    if wall is not None:
        (run / "result.json").write_text(json.dumps({"wall_seconds": wall, "iterations": iteration}))
    if final is not None:
        (run / "final").mkdir()
        (run / "final" / "result.json").write_text(json.dumps({"metric": "test_acc", **final}))
    return run


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    # d1 / A: τ of seed 0 over (pred, true) = (1, .25) (2, .5) (3, .375): 2 concordant, 1 discordant -> 1/3;
    # seed 1: predictions in the accuracies' order -> 1. The failed candidate's prediction is left out.
    write_run(root, "d1", A, 0, [ok(0.25, origin="random"), ok(0.25, 1.0), ok(0.5, 2.0), ok(0.375, 3.0),
                                 failed("too_slow", prediction=9.0)], wall=100.0, final={"status": "ok", "test_acc": 0.5})
    write_run(root, "d1", A, 1, [ok(0.5, 0.1), ok(0.75, 0.2), failed("nan", 0.3)], wall=200.0,
              final={"status": "ok", "test_acc": 0.625})
    write_run(root, "d1", B, 0, [ok(0.625), failed("zero_acc", acc=0.0)], wall=50.0,
              final={"status": "ok", "test_acc": 0.75})
    write_run(root, "d1", B, 1, [ok(0.625), ok(0.625, origin="seed_copy")], wall=70.0,
              final={"status": "nan", "test_acc": None})
    write_run(root, "d1", C, 0, [ok(0.25)], wall=10.0)
    write_run(root, "d1", C, 1, [ok(0.5), failed("too_slow")], wall=30.0)
    # d2 / A: τ 1, -1 and (one pair) none -> mean 0, SE 1 over two seeds.
    write_run(root, "d2", A, 0, [ok(0.125, 0.1), ok(0.25, 0.2)], wall=10.0)
    write_run(root, "d2", A, 1, [ok(0.375, 0.3), ok(0.5, 0.2)], wall=10.0)
    write_run(root, "d2", A, 2, [ok(0.75, 0.5), failed("oom")], wall=None)  # unfinished: wall = 2 s + 2 s
    write_run(root, "d2", B, 0, [ok(0.875)], wall=40.0)
    write_run(root, "d2", B, 1, [ok(0.625)], wall=40.0)
    write_run(root, "d2", C, 0, [ok(0.5)], wall=40.0)
    write_run(root, "d2", C, 1, [ok(0.5)], wall=40.0)
    # Not runs of the sweep: a folder set aside by search.restart, a folder that is not seed=<s>.
    write_run(root / "d1" / A / "seed=0" / "restarted-2026", "d9", A, 0, [ok(0.99)])
    (root / "d1" / A / "notes").mkdir()
    (root / "d1" / A / "notes" / "archive.jsonl").write_text(json.dumps(ok(0.99)) + "\n")
    return root


def test_mean_se_by_hand():
    mean, se, n = tables.mean_se([0.25, 0.5, 0.75, None, float("nan")])
    assert (mean, n) == (0.5, 3) and math.isclose(se, 0.25 / math.sqrt(3))
    mean, se, n = tables.mean_se([0.4])
    assert (mean, n) == (0.4, 1) and math.isnan(se)  # one seed: no standard error
    assert tables.mean_se([])[2] == 0


def test_collect_skips_what_is_not_a_run(sweep):
    runs = collect_runs(sweep)
    assert [(r.dataset, r.arm, r.seed) for r in runs][:2] == [("d1", C, "0"), ("d1", C, "1")]
    assert len(runs) == 13 and {r.dataset for r in runs} == {"d1", "d2"}
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        collect_runs(sweep / "nothing")
    with pytest.raises(FileNotFoundError, match="no <dataset>/<arm>/seed=<s>/archive.jsonl"):
        collect_runs(sweep / "d1" / A / "notes")


def test_accuracy_table_by_hand(sweep):
    table = tables.accuracy_table(tables.run_table(collect_runs(sweep))).set_index(["dataset", "arm"])
    expected = {  # (dataset, arm): (seeds, mean, se)
        ("d1", A): (2, 0.625, 0.125), ("d1", B): (2, 0.625, 0.0), ("d1", C): (2, 0.375, 0.125),
        ("d2", A): (3, 0.5, 0.25 / math.sqrt(3)), ("d2", B): (2, 0.75, 0.125), ("d2", C): (2, 0.5, 0.0),
    }
    for key, (seeds, mean, se) in expected.items():
        row = table.loc[key]
        assert row.seeds == seeds and row.best_val_acc_n == seeds, key
        assert math.isclose(row.best_val_acc_mean, mean) and math.isclose(row.best_val_acc_se, se, abs_tol=1e-15), key
    # final test: d1/A both seeds (0.5, 0.625); d1/B one (the other trained to NaN); none elsewhere
    assert (table.loc[("d1", A), "test_acc_mean"], table.loc[("d1", A), "test_acc_se"]) == (0.5625, 0.0625)
    assert table.loc[("d1", B), "test_acc_n"] == 1 and table.loc[("d1", B), "test_acc_mean"] == 0.75
    assert math.isnan(table.loc[("d1", B), "test_acc_se"]) and table.loc[("d2", A), "test_acc_n"] == 0
    # τ: d1/A seeds 1/3 and 1 -> mean 2/3, SE 1/3; d2/A 1 and -1 (third seed: one pair) -> 0 ± 1
    d1a, d2a = table.loc[("d1", A)], table.loc[("d2", A)]
    assert math.isclose(d1a.kendall_tau_mean, 2 / 3) and math.isclose(d1a.kendall_tau_se, 1 / 3)
    assert (d2a.kendall_tau_mean, d2a.kendall_tau_se, d2a.kendall_tau_n) == (0.0, 1.0, 2)
    assert table.loc[("d1", B), "kendall_tau_n"] == 0 and math.isnan(table.loc[("d1", B), "kendall_tau_mean"])
    assert tables.best_arms(table.reset_index(), "best_val_acc_mean") == {("d1", A), ("d1", B), ("d2", B)}


def test_ranks_by_hand(sweep):
    ranks = tables.ranks(tables.accuracy_table(tables.run_table(collect_runs(sweep))))
    assert ranks.index.tolist() == [B, A, C]  # best average first
    assert ranks.loc[A, ["d1", "d2", "average_rank"]].tolist() == [1.5, 2.5, 2.0]
    assert ranks.loc[B, ["d1", "d2", "average_rank"]].tolist() == [1.5, 1.0, 1.25]
    assert ranks.loc[C, ["d1", "d2", "average_rank"]].tolist() == [3.0, 2.5, 2.75]
    assert ranks["datasets"].tolist() == [2, 2, 2]


def test_an_arm_missing_from_a_dataset_is_ranked_where_it_ran():
    table = pd.DataFrame({"dataset": ["d1", "d1", "d2"], "arm": ["a", "b", "a"],
                          "best_val_acc_mean": [0.5, 0.75, 0.25]})
    ranks = tables.ranks(table)
    assert ranks.loc["a", "average_rank"] == 1.5 and ranks.loc["b", "average_rank"] == 1.0
    assert ranks.loc["b", "datasets"] == 1 and math.isnan(ranks.loc["b", "d2"])


def test_counts_and_wall_time_by_hand(sweep):
    runs = collect_runs(sweep)
    status = tables.status_table(runs)
    assert status.loc[A].to_dict() == {"runs": 5, "evaluated": 14, "trained": 11, "seed_copies": 0, "failed": 3,
                                       "nan": 1, "oom": 1, "too_slow": 1, "zero_acc": 0}
    assert status.loc[B, ["evaluated", "trained", "seed_copies", "failed", "zero_acc"]].tolist() == [6, 4, 1, 1, 1]
    wall = tables.wall_table(tables.run_table(runs))
    # A: 100, 200, 10, 10 and the unfinished run's candidates' seconds (2 x (0.5 + 1.5) = 4)
    assert wall.loc[A, "wall_seconds_total"] == 324.0 and wall.loc[A, "finished"] == 4
    assert math.isclose(wall.loc[A, "wall_seconds_mean"], 64.8)
    assert math.isclose(wall.loc[A, "wall_seconds_se"], np.std([100, 200, 10, 10, 4], ddof=1) / math.sqrt(5))


def test_curve_band_by_hand():
    mean, se, n = tables.curve_band([[np.nan, 0.25, 0.5, 0.5], [0.25, 0.75, 0.75]])
    assert n.tolist() == [1, 2, 2] and mean.tolist() == [0.25, 0.5, 0.625]
    assert se[0] == 0.0 and math.isclose(se[1], 0.25) and math.isclose(se[2], 0.125)


def test_cells():
    assert mean_se_cell(0.5625, 0.0625, 2, 2, bold=True) == "**0.5625 ± 0.0625**"
    assert mean_se_cell(0.75, math.nan, 1, 2) == "0.7500 (n=1)"
    assert mean_se_cell(math.nan, math.nan, 0, 2) == "-"


def test_report_files(sweep, tmp_path):
    report = build_report(sweep, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["accuracy.csv", "best_so_far.png", "candidates.csv",
                                                      "ranks.csv", "report.md", "runs.csv", "wall_time.csv"]
    assert (out / "best_so_far.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(out / "runs.csv").shape[0] == 13 and report.figure == out / "best_so_far.png"
    text = report.path.read_text()
    # columns: the arms in name order, C (regularised_...), B (...-random-...), A (...-rf-...); (n=k): fewer
    # than the 3 seeds of d2/A
    assert f"| dataset | {C} | {B} | {A} |" in text
    assert "| d1 | 0.3750 ± 0.1250 (n=2) | **0.6250 ± 0.0000 (n=2)** | **0.6250 ± 0.1250 (n=2)** |" in text
    assert "| d2 | 0.5000 ± 0.0000 (n=2) | **0.7500 ± 0.1250 (n=2)** | 0.5000 ± 0.1443 |" in text
    assert "| d1 | - | **0.7500 (n=1)** | 0.5625 ± 0.0625 (n=2) |" in text  # final test
    assert "10 of 13 runs have no final test accuracy yet" in text
    assert f"| {B} | 1.5 | 1 | 1.25 | 2 |" in text and f"| {C} | 3 | 2.5 | 2.75 | 2 |" in text
    assert "| d1 | - | - | 0.6667 ± 0.3333 (n=2) |" in text  # τ
    assert "1 run has not finished" in text and "![best so far](best_so_far.png)" in text
    assert f"| {A} | 5 | 4 | 0:01:05 ± 0:00:38 | 0:05:24 |" in text  # wall: 64.8 ± 38.2 s, 324 s


def test_sweep_task_shares_the_report_numbers(sweep, tmp_path):
    table, figures = aggregate_sweep(sweep, tmp_path / "quick")
    row = table.set_index(["dataset", "arm"]).loc[("d2", A)]
    assert row.best_val_acc_mean == 0.5 and math.isclose(row.best_val_acc_se, 0.25 / math.sqrt(3))
    assert "**0.7500 ± 0.1250 (n=2)**" in (tmp_path / "quick" / "sweep_summary.md").read_text()
    assert [p.name for p in figures] == ["best_so_far.png"]


def _evaluate(*args, tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), *args, f"paths.output_dir={tmp_path}"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_evaluate_report_cli(sweep, tmp_path):
    out = tmp_path / "report"
    proc = _evaluate("task=report", f"sweep_dir={sweep}", f"hydra.run.dir={out}", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"-> {out / 'report.md'}" in proc.stdout
    text = (out / "report.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Best validation accuracy", "## Final test accuracy", "## Average rank",
                        "## Candidates trained and failed", "## Surrogate ranking (prospective Kendall τ)",
                        "## Wall time", "## Best so far", "## Files"]
    assert "| d2 | 0.5000 ± 0.0000 (n=2) | **0.7500 ± 0.1250 (n=2)** | 0.5000 ± 0.1443 |" in text
    assert (out / "tables" / "report_ranks.csv").exists()  # logged through the logger (csv)
    run = json.loads((out / "summary.json").read_text())["_run"]
    assert run["group"] == sweep.name  # the sweep's group, the one its search runs log to

