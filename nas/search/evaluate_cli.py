"""evaluate.py's tasks: ``sweep`` (aggregate searches), ``features`` (a run's feature table) and
``surrogate`` (ranking quality under the paper's protocols)."""
from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nas.hydra_utils import hydra_run_dir
from nas.logging import create_logger

TASKS = ("sweep", "features", "surrogate")


def main(cfg: DictConfig) -> None:
    if cfg.task not in TASKS:
        sys.exit(f"evaluate.py: error: unknown task {cfg.task!r}; available: {', '.join(TASKS)}")
    out_dir = hydra_run_dir()
    logger = create_logger(cfg.get("logger"), run_dir=str(out_dir), job_type="evaluate", name=f"evaluate-{cfg.task}",
                           config=OmegaConf.to_container(cfg, resolve=True))
    try:
        {"sweep": _sweep, "features": _features, "surrogate": _surrogate}[cfg.task](cfg, out_dir, logger)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"evaluate.py: error: {err}")
    finally:
        logger.finish()


def _sweep(cfg, out_dir: Path, logger) -> None:
    from nas.search.aggregate import aggregate_sweep, to_markdown

    table, figures = aggregate_sweep(cfg.sweep_dir, out_dir)
    logger.table("sweep_summary", table)
    logger.summary({"runs": int(table["seeds"].sum()), "arms": len(table)})
    print(to_markdown(table), end="")
    print(f"-> {out_dir} ({len(figures)} figure(s))")


def _features(cfg, out_dir: Path, logger) -> None:
    from nas.search.features import run_features

    if not cfg.run:
        raise ValueError("task=features needs run=<search run dir>")
    encoding = OmegaConf.to_container(cfg.encoding, resolve=True) if cfg.get("encoding") is not None else None
    seed = cfg.get("features_seed")
    result = run_features(cfg.run, encoding, cfg.export_dir, seed=None if seed is None else int(seed))
    for line in result.lines():
        print(line)
    if result.export_error:
        raise ValueError(result.export_error)


def _surrogate(cfg, out_dir: Path, logger) -> None:
    from surrogates.predictors.tables import load_feature_archive
    from surrogates.protocols import to_markdown
    from surrogates.report import run_protocol, write_report

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
