"""What a search reports: a metrics row per trained candidate and per surrogate refit (W&B and
disk), ``features.csv`` and ``figures/`` now and then, and ``result.json`` at the end.

Derived outputs (features, figures) never stop a search: a failure there is a warning.

**The run summary** (W&B's run summary and ``summary.json``) carries what a dashboard needs to
compare arms, under the names the sweep report uses (``nas.report``, ``runs.csv``): from the
start ``dataset``, ``arm`` (``<strategy>-<surrogate>-<encoding>``, the run dir's folder),
``strategy``, ``surrogate``, ``encoding`` and ``seed``; at the end ``best_val_acc``,
``kendall_tau`` (the surrogate's prospective Kendall τ over the whole run: the predictions made
when candidates were chosen against their true accuracies, ``None`` for an arm without
predictions; ``surrogate/kendall_tau`` is the same measure per refit window), ``tau_pairs``,
``test_acc`` (``<run>/final/result.json``'s, ``None`` until the final retraining exists:
:func:`record_test_accuracy` puts it in afterwards), ``iterations``, ``n_failed``,
``wall_seconds`` and ``n_seeds_failed``.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nas.logging import atomic_write_text, create_logger, to_jsonable
from nas.search.identity import experiment_config
from nas.search.run_dir import RESULT
from nas.search.strategies.base import record_of
from surrogates.feature_tables import (
    TRAINED_STATUSES,
    feature_table,
    search_settings,
    write_feature_table,
)
from surrogates.metrics import rank_metrics

log = logging.getLogger(__name__)


def arm_name(cfg: DictConfig) -> str:
    """The arm a run belongs to, ``<strategy>-<surrogate>-<encoding>``: its run dir's folder."""
    return f"{cfg.strategy.name}-{cfg.surrogate.name}-{cfg.encoding.name}"


def run_name(cfg: DictConfig) -> str:
    return f"{cfg.dataset.name}/{arm_name(cfg)}/seed={int(cfg.seed)}"


def identity_summary(cfg: DictConfig) -> dict[str, Any]:
    """The fields that place a run in a comparison of arms (W&B filters and groups by them)."""
    return {"dataset": str(cfg.dataset.name), "arm": arm_name(cfg), "strategy": str(cfg.strategy.name),
            "surrogate": str(cfg.surrogate.name), "encoding": str(cfg.encoding.name), "seed": int(cfg.seed)}


def result_summary(records: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """The comparable results of a run, as the sweep report computes them (one definition)."""
    from nas.report.tables import prospective_tau

    tau, pairs = prospective_tau(records)
    return {"best_val_acc": best_accuracy(records), "kendall_tau": tau, "tau_pairs": pairs,
            "test_acc": final_test_accuracy(run_dir)}


def final_test_accuracy(run_dir: Path) -> float | None:
    """``test_acc`` of the final retraining (``<run>/final/result.json``), ``None`` without one
    (or when it did not train, or the file cannot be read)."""
    from nas.report.collect import FINAL_DIR
    from nas.report.tables import final_test_acc

    try:
        final = json.loads((Path(run_dir) / FINAL_DIR / RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = final_test_acc(final) if isinstance(final, dict) else math.nan
    return None if math.isnan(value) else value


def record_test_accuracy(run_dir: str | Path) -> float | None:
    """Put the final retraining's test accuracy into a finished search run's summary (its
    ``summary.json`` and the same W&B run, resumed, through the logger the search used).

    For the pipeline's last phase, after ``train.py trainer=final`` wrote
    ``<run>/final/result.json``. Returns the accuracy written (``None``: no final result yet).
    Raises ``FileNotFoundError`` when the search has not finished (no ``result.json``).
    """
    run_dir = Path(run_dir)
    result = json.loads((run_dir / RESULT).read_text(encoding="utf-8"))
    test_acc = final_test_accuracy(run_dir)
    cfg = OmegaConf.create(result.get("config") or {})
    if cfg.get("logger") is None:
        return test_acc
    logger = create_logger(cfg.logger, run_dir=str(run_dir), job_type="search", name=run_name(cfg),
                           group=cfg.get("sweep_name"), config=result["config"])
    try:
        logger.summary({**identity_summary(cfg), "test_acc": test_acc})
    finally:
        logger.finish()
    return test_acc


def best_accuracy(records: list[dict[str, Any]]) -> float | None:
    accs = [r["val_acc"] for r in records if r["status"] == "ok"]
    return max(accs) if accs else None


class SearchReport:
    def __init__(self, cfg: DictConfig, run_dir: Path, space: Any, surrogate: Any):
        self.cfg, self.run_dir, self.space, self.surrogate = cfg, run_dir, space, surrogate
        self.name = run_name(cfg)
        self.logger = None
        self.last_figures = time.perf_counter()

    def start(self) -> None:
        self.logger = create_logger(self.cfg.get("logger"), run_dir=str(self.run_dir), job_type="search",
                                    name=self.name, group=self.cfg.get("sweep_name"),
                                    config=OmegaConf.to_container(self.cfg, resolve=True))
        self.logger.define_metric("search/*", step_metric="search/iteration")
        self.logger.define_metric("surrogate/*", step_metric="search/iteration")
        self.logger.summary(identity_summary(self.cfg))

    def close(self) -> None:
        if self.logger is not None:
            self.logger.finish()

    # ------------------------------------------------------------------------- metrics
    def trained(self, record: dict[str, Any], records: list[dict[str, Any]], n_failed: int) -> None:
        """One row per trained candidate, at its iteration."""
        self.logger.log({"search/iteration": record["iteration"], "search/val_acc": record["val_acc"],
                         "search/best_val_acc": best_accuracy(records), "search/n_failed": n_failed,
                         "search/num_params": record["num_params"],
                         "search/train_seconds": record["seconds"].get("train", 0.0)}, step=record["iteration"])

    def refit(self, refit: dict[str, Any], since_last_refit: list[dict[str, Any]], iteration: int) -> None:
        """A refit's row: fit cost and how well the previous fit ranked the candidates it chose
        since (Kendall tau, Spearman), with their predicted-vs-true table."""
        chosen = [r for r in since_last_refit if r.get("prediction") is not None and r["status"] == "ok"]
        row = {"search/iteration": iteration, "surrogate/fit_seconds": refit.get("fit_seconds", 0.0),
               "surrogate/n_train": refit.get("n_train", 0), "surrogate/n_scored": len(chosen)}
        if len(chosen) >= 2:
            metrics = rank_metrics([r["prediction"] for r in chosen], [r["val_acc"] for r in chosen])
            row.update({"surrogate/kendall_tau": metrics["kendall_tau"], "surrogate/spearman": metrics["spearman"]})
        self.logger.log(row, step=iteration)
        if chosen:
            import pandas as pd

            self.logger.table(f"predicted_vs_true_it{iteration}", pd.DataFrame(
                {"index": [r["index"] for r in chosen], "prediction": [r["prediction"] for r in chosen],
                 "val_acc": [r["val_acc"] for r in chosen]}))

    # ----------------------------------------------------------------- files on disk
    def figures_due(self, iteration: int) -> bool:
        settings = self.cfg.search
        return (iteration % int(settings.figures_every) == 0
                and time.perf_counter() - self.last_figures >= float(settings.figures_min_interval_s))

    def figures(self, records: list[dict[str, Any]]) -> None:
        """``features.csv`` (for a feature-based surrogate) and ``figures/``."""
        self.last_figures = time.perf_counter()
        try:
            self._write_features(records)
        except Exception as err:  # derived output: never stops a search
            log.warning("could not write features.csv: %s", err)
        try:
            from nas.search.figures import write_search_figures

            write_search_figures(records, self.run_dir / "figures", title=self.name)
        except Exception as err:  # a plot must never stop a search
            log.warning("could not write figures: %s", err)

    def _write_features(self, records: list[dict[str, Any]]) -> None:
        encoder = getattr(self.surrogate, "encoder", None)
        if encoder is not None and any(r["status"] in TRAINED_STATUSES for r in records):
            frame = feature_table(records, self.space, encoder)
            settings = search_settings(to_jsonable(experiment_config(self.cfg)))
            write_feature_table(self.run_dir / "features.csv", frame, settings, "search")

    # ------------------------------------------------------------------------- result
    def finish(self, records: list[dict[str, Any]], strategy: Any, failures: dict[str, int], budget: int,
               wall_seconds: float) -> dict[str, Any]:
        """Figures, the summary, and ``result.json`` last: it marks the search as finished (a rerun
        then rewrites nothing), so a kill while figures are drawn or the summary is logged redoes them."""
        ok = [r for r in records if r["status"] == "ok"]
        best = max(ok, key=lambda r: r["val_acc"]) if ok else None
        trained = [r for r in ok if r["origin"] != "seed_copy"]
        n_failed = sum(failures.values())
        result = {
            "run": self.name, "best": None if best is None else {
                "val_acc": best["val_acc"], "arch": best["arch"], "index": best["index"],
                "iteration": best["iteration"], "short": self.space.parse(best["arch"]).short_string},
            "iterations": strategy.iteration, "budget": budget,
            "candidates": {"evaluated": len(records), "trained_ok": len(trained),
                           "seed_copies": len(ok) - len(trained), "failed": n_failed,
                           "failed_by_status": dict(failures),
                           "bred_rejected_by_prechecks": dict(strategy.precheck_failures)},
            "seeds": seed_report(strategy, records),
            "wall_seconds": wall_seconds, "strategy_seconds": dict(strategy.timings),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
        }
        self.figures(records)
        self.logger.summary({**identity_summary(self.cfg), **result_summary(records, self.run_dir),
                             "iterations": strategy.iteration, "n_failed": n_failed,
                             "wall_seconds": wall_seconds, "n_seeds_failed": len(result["seeds"]["failed"])})
        atomic_write_text(self.run_dir / RESULT, json.dumps(to_jsonable(result), indent=2))
        return result


def seed_report(strategy: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The seed architectures asked for, those trained and those that failed (with why)."""
    failed = {name: {"index": i, "status": None if i is None else record_of(records, i)["status"],
                     "reason": None if i is None else record_of(records, i)["reason"]}
              for name, i in strategy.failed_seeds.items()}
    return {"requested": list(strategy.seed_names), "trained": dict(strategy.trained_seeds), "failed": failed}
