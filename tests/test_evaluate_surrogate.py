"""evaluate.py task=features and task=surrogate, and the protocol report, on small inputs."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from surrogates.report import run_protocol, write_report

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def _feature_file(path: Path, n: int, rng, flip: bool = False):
    x = rng.normal(size=(n, 5))
    acc = 0.5 + 0.1 * x[:, 0] * (-1 if flip else 1) + 0.01 * rng.normal(size=n)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame.insert(0, "id", range(n))
    frame["accuracy"] = acc
    frame.to_csv(path, index=False)


def test_protocols_report_known_answers(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for seed in (0, 1):
            _feature_file(tmp_path / f"{name}_seed={seed}.csv", 150, rng)
    _feature_file(tmp_path / "c_seed=0.csv", 150, rng, flip=True)
    _feature_file(tmp_path / "c_seed=1.csv", 150, rng, flip=True)
    from surrogates.predictors.tables import load_feature_archive

    frames = load_feature_archive(tmp_path)
    in_run = run_protocol("in_run", frames, ["rf"], limits=[50, 100], test_size=50)
    assert len(in_run) == 3 * 2 * 2 and (in_run["kendall_tau"] > 0.5).all()
    loo = run_protocol("leave_one_out", frames, ["rf", "xgb"], policy="minmax")
    tau = loo.set_index(["dataset", "predictor"])["kendall_tau"]
    assert tau[("c", "rf")] < -0.3  # trained on a and b, which rank the other way round
    agreeing = run_protocol("leave_one_out", {k: frames[k] for k in ("a", "b")}, ["rf"], policy="minmax")
    assert (agreeing["kendall_tau"] > 0.5).all()
    o2o = run_protocol("one_to_one", frames, ["rf"])
    assert len(o2o) == 9
    tables = write_report(loo, "leave_one_out", tmp_path / "report")
    assert list(tables["kendall_tau"].index) == ["a", "b", "c", "mean"]
    assert (tmp_path / "report" / "table_kendall_tau.md").read_text().startswith("| dataset | rf | xgb |")
    assert (tmp_path / "report" / "table_kendall_tau.png").stat().st_size > 0


def test_evaluate_surrogate_cli_writes_tables(tmp_path):
    rng = np.random.default_rng(1)
    features = tmp_path / "features"
    features.mkdir()
    for name in ("a", "b"):
        _feature_file(features / f"{name}_seed=0.csv", 120, rng)
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "task=surrogate", "protocol=leave_one_out",
                           f"features_dir={features}", "predictors=[rf,lgbm]", f"paths.output_dir={tmp_path}"],
                          env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| dataset | rf | lgbm |" in proc.stdout
    out = next((tmp_path / "evaluate" / "surrogate").iterdir())
    assert (out / "results.csv").exists() and (out / "table_spearman.csv").exists()


def test_evaluate_features_cli_and_missing_run(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "task=features", f"run={tmp_path}/nope",
                           f"paths.output_dir={tmp_path}"], env=ENV, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "not a search run directory" in proc.stderr
