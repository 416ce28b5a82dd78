"""Run a surrogate evaluation protocol over predictors and write the paper-style tables and a plot.

``surrogate_task`` is ``evaluate.py task=surrogate``. Inputs are feature files
``<dataset>_seed=<s>.csv`` (from ``evaluate.py task=features`` or searches with a feature-based
surrogate); outputs go to one directory: ``results.csv`` (every protocol row), ``table_<metric>.{csv,md}`` (datasets x
predictors, with a mean row) and ``table_kendall_tau.png``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from nas.markdown import to_markdown
from surrogates.predictors import create_predictor
from surrogates.predictors.tables import load_feature_archive
from surrogates.protocols import (
    in_run_windows,
    leave_one_out,
    one_to_one,
    results_table,
)

log = logging.getLogger(__name__)

PROTOCOLS = ("in_run", "one_to_one", "leave_one_out")
METRICS = ("kendall_tau", "spearman")


def run_protocol(protocol: str, frames: dict[str, dict[int, pd.DataFrame]], predictors: Sequence[str],
                 seed: int = 0, limits: Sequence[int] = (100, 200, 300), test_size: int = 100,
                 policy: str = "raw", source_seed: int = 1, target_seed: int = 0) -> pd.DataFrame:
    """One row per (dataset or source/target, predictor[, seed, limit]) with the rank metrics."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; available: {', '.join(PROTOCOLS)}")
    if "tr_rf" in predictors:
        raise ValueError("tr_rf is the in-search transfer surrogate; evaluate transfer with "
                         "protocol=leave_one_out (or one_to_one) and an ordinary predictor such as rf")
    rows = []
    for name in predictors:
        def factory(name=name):
            return create_predictor(name, seed=seed)

        if protocol == "in_run":
            for dataset, runs in frames.items():
                for run_seed, frame in runs.items():
                    result = in_run_windows(frame, factory, limits=limits, test_size=test_size, policy=policy)
                    rows += [{"dataset": dataset, "seed": run_seed, "predictor": name, **r}
                             for r in result.to_dict("records")]
        elif protocol == "one_to_one":
            for source, source_runs in frames.items():
                for target, target_runs in frames.items():
                    if source_seed not in source_runs or target_seed not in target_runs:
                        log.warning("one_to_one: %s seed %s -> %s seed %s missing, skipped",
                                    source, source_seed, target, target_seed)
                        continue
                    result = one_to_one(source_runs[source_seed], target_runs[target_seed], factory, policy=policy)
                    rows += [{"dataset": target, "source": source, "predictor": name, **r}
                             for r in result.to_dict("records")]
        else:
            result = leave_one_out(frames, None, factory, policy=policy)
            rows += [{"predictor": name, **r} for r in result.to_dict("records")]
    return pd.DataFrame(rows)


def write_report(rows: pd.DataFrame, protocol: str, out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Tables (datasets x predictors, mean row) per metric, and a plot of the Kendall tau table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out_dir / "results.csv", index=False)
    tables = {}
    for metric in METRICS:
        table = results_table(rows, index="dataset", columns="predictor", value=metric, average=True)
        tables[metric] = table
        table.to_csv(out_dir / f"table_{metric}.csv")
        (out_dir / f"table_{metric}.md").write_text(to_markdown(table) + "\n")
    if protocol == "one_to_one":
        for name, part in rows.groupby("predictor", sort=False):
            matrix = results_table(part, index="source", columns="dataset", value="kendall_tau")
            matrix.to_csv(out_dir / f"matrix_kendall_tau_{name}.csv")
            tables[f"matrix_{name}"] = matrix
    _plot(tables["kendall_tau"], out_dir / "table_kendall_tau.png", protocol)
    return tables


def _plot(table: pd.DataFrame, path: Path, protocol: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(5.0, 1.2 * len(table.index)), 3.6))
    axis = figure.add_subplot()
    table.plot.bar(ax=axis, rot=30)
    axis.set_ylabel("Kendall tau")
    axis.set_title(f"surrogate ranking quality ({protocol})")
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def surrogate_task(cfg, out_dir: Path, logger) -> None:
    """``evaluate.py task=surrogate``: ``cfg.protocol`` over the feature files of ``cfg.features_dir``,
    the report written to ``out_dir`` and the Kendall tau table printed."""
    frames = load_feature_archive(cfg.features_dir, cfg.datasets)
    rows = run_protocol(cfg.protocol, frames, list(cfg.predictors), seed=int(cfg.seed), limits=list(cfg.limits),
                        test_size=int(cfg.test_size), policy=cfg.policy, source_seed=int(cfg.source_seed),
                        target_seed=int(cfg.target_seed))
    if rows.empty:
        raise ValueError(f"protocol {cfg.protocol} produced no result from {cfg.features_dir} "
                         "(too few rows for the limits, or missing seeds)")
    tables = write_report(rows, cfg.protocol, out_dir)
    logger.table("results", rows)
    for name, table in tables.items():
        logger.table(f"table_{name}", table.reset_index())
    tau = tables["kendall_tau"]
    logger.summary({f"kendall_tau/{c}": float(tau.loc["mean", c]) for c in tau.columns})
    print(to_markdown(tau))
    print(f"-> {out_dir}")
