"""Benchmark: fit and batched predict time of every registered predictor, one thread.

    OMP_NUM_THREADS=1 python bench/predictors.py                  # all, 1,000 x 392, ~10 min on 1 core
    python bench/predictors.py --only rf,xgb,lgbm                 # a subset
    python bench/predictors.py --transfer-files 64 --transfer-rows 400   # tr_rf at the paper's size

Data: 1,000 training rows x 392 features (the GRAF + ZCP width) drawn from a standard normal, and a
target that depends on a few of them plus noise (pure noise would let boosting stop growing trees
early and flatter the timings). Predict times are for 1,000 rows in one call and for the search's
batch of 20 candidates. ``load s`` is ``save`` + ``load``: for the sklearn models that includes the
deterministic refit (see ``surrogates/predictors/base.py``). ``tr_rf`` trains on synthetic transfer
files (``--transfer-files`` files of ``--transfer-rows`` rows, default 16 x 400 = 6,400 rows) plus
the 1,000 current rows. Nothing is shrunk or skipped: the slow configurations (xgb_tuned's 10,000
trees, the 36-member ensembles) are measured at their paper settings.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from surrogates.predictors import create_predictor, list_predictors, load_predictor  # noqa: E402


def make_data(rows: int, features: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"feat_{i:03d}" for i in range(features)])
    signal = np.tanh(X.iloc[:, 0]) + 0.5 * X.iloc[:, 1] * X.iloc[:, 2] + 0.3 * np.abs(X.iloc[:, 3])
    y = 0.6 + 0.1 * signal.to_numpy() + 0.05 * rng.normal(size=rows)
    return X, np.clip(y, 0.01, 0.99)


def write_transfer(root: Path, files: int, rows: int, features: int) -> None:
    for i in range(files):
        X, y = make_data(rows, features, seed=1000 + i)
        frame = pd.concat([pd.DataFrame({"id": np.arange(rows)}), X, pd.DataFrame({"accuracy": y})], axis=1)
        frame.to_csv(root / f"source{i // 8}_seed={i % 8}.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--features", type=int, default=392)
    parser.add_argument("--only", default="", help="comma-separated predictor names (default: all)")
    parser.add_argument("--transfer-files", type=int, default=16)
    parser.add_argument("--transfer-rows", type=int, default=400)
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()

    names = [n for n in args.only.split(",") if n] or list_predictors()
    X, y = make_data(args.rows, args.features, seed=0)
    X_test, _ = make_data(1000, args.features, seed=1)
    batch = X_test.iloc[:20]
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"n_jobs={args.n_jobs}, train {args.rows} x {args.features}")
    print(f"{'predictor':<14} {'fit s':>9} {'predict 1000 s':>15} {'predict 20 ms':>14} {'load s':>9}  notes")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        transfer = tmp_path / "transfer"
        if "tr_rf" in names:
            transfer.mkdir()
            write_transfer(transfer, args.transfer_files, args.transfer_rows, args.features)
        for name in names:
            kw = {"n_jobs": args.n_jobs}
            note = ""
            if name == "tr_rf":
                kw.update(transfer_dir=transfer, dataset="target")
                note = f"+{args.transfer_files * args.transfer_rows} transfer rows"
            model = create_predictor(name, seed=0, **kw)
            start = time.perf_counter()
            model.fit(X, y)
            fit_s = time.perf_counter() - start
            model.predict(batch)  # warm-up (lazy library set-up)
            start = time.perf_counter()
            model.predict(X_test)
            pred_s = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(5):
                model.predict(batch)
            batch_ms = (time.perf_counter() - start) / 5 * 1000
            start = time.perf_counter()
            model.save(tmp_path / name)
            load_predictor(tmp_path / name)
            load_s = time.perf_counter() - start
            if hasattr(model, "n_members"):
                note = f"{model.n_members} members, {len(model.distinct_members())} fitted"
            print(f"{name:<14} {fit_s:>9.2f} {pred_s:>15.3f} {batch_ms:>14.2f} {load_s:>9.2f}  {note}", flush=True)


if __name__ == "__main__":
    main()
