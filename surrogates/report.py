"""Run a surrogate evaluation protocol over predictors and write the paper-style tables and a plot.

``surrogate_task`` is ``evaluate.py task=surrogate``. Inputs are feature files
``<dataset>_seed=<s>.csv`` (from ``evaluate.py task=features`` or searches with a feature-based
surrogate); outputs go to one directory: ``results.csv`` (every protocol row), ``table_<metric>.{csv,md}`` (datasets x
predictors, with a mean row) and ``table_kendall_tau.png``.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from nas.markdown import to_markdown
from surrogates.predictors import create_predictor
from surrogates.predictors.tables import load_feature_archive
from surrogates.protocols import (
    in_run_windows,
    leave_one_out,
    on_the_fly,
    one_to_one,
    results_table,
)

log = logging.getLogger(__name__)

PROTOCOLS = ("in_run", "one_to_one", "leave_one_out", "on_the_fly")
METRICS = ("kendall_tau", "spearman")


def run_protocol(protocol: str, frames: dict[str, dict[int, pd.DataFrame]], predictors: Sequence[str] | Mapping,
                 seed: int = 0, limits: Sequence[int] = (100, 200, 300), test_size: int = 100,
                 policy: str = "raw", source_seed: int = 1, target_seed: int = 0, chunk_size: int = 100,
                 finetune: bool = True, targets: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (dataset or source/target, predictor[, seed, limit or chunk]) with the rank metrics.

    ``predictors``: registered names (each built with ``seed``) or ``{name: factory}``.
    ``targets``: the datasets that may be scored (None: all); the others are only trained on."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; available: {', '.join(PROTOCOLS)}")
    if "tr_rf" in predictors:
        raise ValueError("tr_rf is the in-search transfer surrogate; evaluate transfer with "
                         "protocol=leave_one_out (or one_to_one) and an ordinary predictor such as rf")
    factories = dict(predictors) if isinstance(predictors, Mapping) else {
        name: (lambda name=name: create_predictor(name, seed=seed)) for name in predictors}
    scored = [d for d in frames if targets is None or d in targets]
    rows = []
    for name, made in factories.items():
        factory = made if finetune or protocol == "on_the_fly" else (lambda made=made: AsIs(made()))
        if protocol in ("in_run", "on_the_fly"):
            for dataset in scored:
                for run_seed, frame in frames[dataset].items():
                    if protocol == "in_run":
                        result = in_run_windows(frame, factory, limits=limits, test_size=test_size, policy=policy)
                    else:
                        result = on_the_fly(frame, factory, chunk_size=chunk_size, finetune=finetune)
                    rows += [{"dataset": dataset, "seed": run_seed, "predictor": name, **r}
                             for r in result.to_dict("records")]
        elif protocol == "one_to_one":
            for source, source_runs in frames.items():
                for target in scored:
                    target_runs = frames[target]
                    if source_seed not in source_runs or target_seed not in target_runs:
                        log.warning("one_to_one: %s seed %s -> %s seed %s missing, skipped",
                                    source, source_seed, target, target_seed)
                        continue
                    result = one_to_one(source_runs[source_seed], target_runs[target_seed], factory, policy=policy)
                    rows += [{"dataset": target, "source": source, "predictor": name, **r}
                             for r in result.to_dict("records")]
        elif scored:
            result = leave_one_out(frames, scored, factory, policy=policy)
            rows += [{"predictor": name, **r} for r in result.to_dict("records")]
    return pd.DataFrame(rows)


class AsIs:
    """A predictor used as it is (``finetune=false``): ``fit`` leaves it unchanged, so a fine-tuned
    checkpoint is scored without further training under any protocol."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.name = predictor.name

    def fit(self, X, y) -> AsIs:
        return self

    def predict(self, X):
        return self.predictor.predict(X)


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
    """``evaluate.py task=surrogate``: ``cfg.protocol`` for the tabular ``predictors`` over the feature
    files of ``cfg.features_dir`` and, with ``surrogate=lm|bert``, for the language model over the
    architecture strings (``data``, else the ``*.strings.csv`` exports in ``features_dir``); the
    report written to ``out_dir`` and the Kendall tau table printed."""
    names = list(cfg.predictors) if cfg.get("predictors") is not None else ([] if cfg.get("surrogate") else ["rf"])
    parts = []
    common = dict(seed=int(cfg.seed), limits=list(cfg.limits), test_size=int(cfg.test_size), policy=cfg.policy,
                  source_seed=int(cfg.source_seed), target_seed=int(cfg.target_seed),
                  chunk_size=int(cfg.get("chunk_size", 100)), finetune=bool(cfg.get("finetune", True)))
    if names:
        frames = load_feature_archive(cfg.features_dir, cfg.datasets)
        parts.append(run_protocol(cfg.protocol, frames, names, **common))
    if cfg.get("surrogate") is not None:
        parts.append(_language_model_rows(cfg, common))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
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


def _language_model_rows(cfg, common: dict) -> pd.DataFrame:
    """The protocol for ``cfg.surrogate`` (a language model) on the architecture-string tables."""
    from omegaconf import OmegaConf

    from surrogates.fine_tuning import checkpoint_datasets, language_model
    from surrogates.string_tables import load_string_archive

    node = OmegaConf.to_container(cfg.surrogate, resolve=True)
    checkpoint = cfg.get("checkpoint") or node.get("checkpoint")
    node["checkpoint"] = checkpoint
    if cfg.protocol == "on_the_fly":  # the paper's per-chunk fine-tuning: 5 epochs of batch 2
        for key, value in (("epochs", cfg.get("on_the_fly_epochs")), ("train_batch_size", cfg.get("on_the_fly_batch_size"))):
            if value is not None:
                node[key] = int(value)
    seed = common["seed"]
    language_model(node, seed)  # a bad source or checkpoint fails here, before any data is read
    frames = load_string_archive(cfg.get("data") or cfg.features_dir, cfg.datasets)
    trained_on = checkpoint_datasets(checkpoint) if checkpoint else set()
    targets = [d for d in frames if d not in trained_on]
    if trained_on & set(frames):
        log.warning("not scored: %s (the checkpoint was fine-tuned on them)", ", ".join(sorted(trained_on & set(frames))))
    if not targets:
        raise ValueError(f"checkpoint {checkpoint} was fine-tuned on every dataset here ({', '.join(frames)}); "
                         "scoring it on them would measure its training data")
    name = str(node.get("name"))
    if checkpoint:
        name += "[checkpoint]" if common["finetune"] else "[checkpoint, no tuning]"
    return run_protocol(cfg.protocol, frames, {name: lambda: language_model(node, seed)}, targets=targets, **common)
