"""Benchmark: leave-one-dataset-out ranking quality of the language model next to rf on graf_zcp,
over the same search archives (issue 11 §5), one thread.

    python search.py dataset=mini_addnist strategy=random_search surrogate=none search.budget=120 \\
        paths.output_dir=/tmp/lmbench            # and the same for mini_multnist (the archives)
    python bench/lm_quality.py --runs /tmp/lmbench/search

For every search run below ``--runs``: its graf_zcp feature table and its architecture strings
are exported (``surrogates.feature_tables.run_features``, the same trained candidates in both).
Then, for each dataset as the target:

- ``rf``: ``surrogates.protocols.leave_one_out`` on the feature tables (per-run ``minmax``
  targets, the paper's transfer setting; ``ecdf`` too);
- ``lm``: ``train.py task=surrogate``'s fine-tuning (``surrogates.fine_tuning``): the other
  datasets' strings with per-dataset ECDF targets, the paper's lr 1e-5, batch 2, 5 epochs, the best
  epoch picked on 10% held-out training rows; scored on the target's runs (zeros kept);
- ``lm (pretrained)``: the same encoder before fine-tuning (its fresh head): the floor.

Kendall τ on the target's rows, and the seconds each took, as a Markdown table (and ``--json``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nas.markdown import to_markdown  # noqa: E402
from surrogates.feature_tables import run_features  # noqa: E402
from surrogates.fine_tuning import fine_tune, split_data  # noqa: E402
from surrogates.metrics import kendall_tau  # noqa: E402
from surrogates.predictors import create_predictor  # noqa: E402
from surrogates.predictors.language_model import DEFAULT_LM, LanguageModelPredictor  # noqa: E402
from surrogates.predictors.tables import load_feature_archive  # noqa: E402
from surrogates.protocols import leave_one_out  # noqa: E402
from surrogates.string_tables import load_string_archive  # noqa: E402


def export(runs_root: Path, out: Path) -> None:
    runs = sorted(p.parent for p in runs_root.rglob("archive.jsonl") if (p.parent / "experiment.json").exists())
    if not runs:
        raise SystemExit(f"no search run below {runs_root}")
    for run in runs:
        started = time.perf_counter()
        result = run_features(run, {"name": "graf_zcp"}, out)
        if result.export_error:
            raise SystemExit(result.export_error)
        print(f"features {run} ({result.action}, {time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="a folder with search runs of two or more datasets")
    parser.add_argument("--model", default=DEFAULT_LM, help="model_name_or_path of the language model")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        export(Path(args.runs), Path(tmp))
        features = load_feature_archive(tmp)
        strings = load_string_archive(tmp)
    rows = []
    for target in strings:
        row = {"target": target, "test rows": sum(len(t) for t in strings[target].values())}
        for policy in ("minmax", "ecdf"):
            started = time.perf_counter()
            result = leave_one_out(features, target, lambda: create_predictor("rf", seed=0, n_jobs=1), policy=policy)
            row[f"rf {policy} tau"] = round(float(result["kendall_tau"].iloc[0]), 4)
            row[f"rf {policy} s"] = round(time.perf_counter() - started, 1)
        data = split_data(strings, target=target, policy="ecdf", holdout=0.1, seed=0)
        lm = LanguageModelPredictor(seed=0, model_name_or_path=args.model, device="cpu", n_jobs=args.threads,
                                    learning_rate=args.lr)
        texts = data.evaluation[["arch", "arch_long"]]
        truth = data.evaluation["accuracy"].to_numpy(float)
        started = time.perf_counter()
        row["lm pretrained tau"] = round(kendall_tau(lm.predict(texts), truth), 4)
        row["lm pretrained s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        outcome = fine_tune(lm, data, args.epochs, args.batch, progress=False)
        row["lm tau"] = round(kendall_tau(lm.predict(texts), truth), 4)
        row["lm s"] = round(time.perf_counter() - started, 1)
        row["lm train rows"] = len(data.train)
        row["lm epoch"] = outcome["epoch"]
        row["lm truncated"] = f"{lm.n_truncated}/{lm.n_inputs}"
        rows.append(row)
        print(json.dumps(row), flush=True)
    import pandas as pd

    table = pd.DataFrame(rows).set_index("target")
    print(to_markdown(table))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
