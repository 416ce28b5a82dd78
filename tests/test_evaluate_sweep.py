"""evaluate.py task=sweep: mean ± standard error over seeds per dataset and arm (the numbers by hand:
tests/test_report.py, which task=sweep shares with task=report)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from nas.search.aggregate import aggregate_sweep

REPO = Path(__file__).resolve().parents[1]


def _write_run(root: Path, dataset: str, arm: str, seed: int, accs: list[float | None]):
    run = root / dataset / arm / f"seed={seed}"
    run.mkdir(parents=True)
    lines, it = [], 0
    for i, acc in enumerate(accs):
        ok = acc is not None
        lines.append(json.dumps({"index": i, "iteration": it if ok else None, "val_acc": acc,
                                 "status": "ok" if ok else "too_slow", "origin": "random"}))
        it += ok
    (run / "archive.jsonl").write_text("\n".join(lines) + "\n")


def test_sweep_table_and_figures(tmp_path):
    _write_run(tmp_path, "mini_addnist", "re-random-none", 0, [0.1, 0.3, None, 0.2])
    _write_run(tmp_path, "mini_addnist", "re-random-none", 1, [0.5, 0.4])
    _write_run(tmp_path, "mini_addnist", "rs-none-none", 0, [0.2, None])
    table, figures = aggregate_sweep(tmp_path, tmp_path / "out")
    row = table.set_index("arm").loc["re-random-none"]
    assert row.seeds == 2 and math.isclose(row.best_val_acc_mean, 0.4)
    assert math.isclose(row.best_val_acc_se, 0.1)  # std([0.3, 0.5], ddof=1) / sqrt(2)
    assert math.isnan(table.set_index("arm").loc["rs-none-none"].best_val_acc_se)
    assert pd.read_csv(tmp_path / "out" / "sweep_summary.csv").shape == (2, 12)
    assert "0.4000 ± 0.1000" in (tmp_path / "out" / "sweep_summary.md").read_text()
    assert [p.name for p in figures] == ["best_so_far.png"]


def test_evaluate_cli_reports_a_sweep_without_runs(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "task=report", f"sweep_dir={tmp_path}",
                           f"paths.output_dir={tmp_path}"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("evaluate.py: error: no <dataset>/<arm>/seed=<s>/archive.jsonl")
