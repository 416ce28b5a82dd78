"""``evaluate.py task=report sweep_dir=<dir>``: the sweep's report, on disk and in the logger.

Writes into the output dir ``report.md`` and, beside it, the figure and one CSV per table (the
numbers unrounded), then logs each table (``logger.table``: a ``wandb.Table`` with
``logger=wandb``) and the figure (``logger.image``). ``evaluate.py`` puts that run in the sweep's
W&B group: the sweep folder's name (``multirun/<sweep_name>``), its search runs' group.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nas.logging import atomic_write_text
from nas.markdown import to_markdown
from nas.report import document, tables
from nas.report.collect import FINAL_DIR, collect_runs
from nas.report.figures import write_best_so_far_panels

REPORT = "report.md"
FIGURE = "best_so_far.png"


@dataclass
class Report:
    """What a report holds: its frames (each also a CSV), the figure and the Markdown file."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # name -> frame, written as <name>.csv
    figure: Path | None = None
    path: Path | None = None


def build_report(sweep_dir: str | Path, out_dir: str | Path, final_dir: str = FINAL_DIR) -> Report:
    """Read every run under ``sweep_dir`` and write ``report.md``, its CSVs and its figure."""
    runs = collect_runs(sweep_dir, final_dir=final_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_run = tables.run_table(runs)
    accuracy = tables.accuracy_table(per_run)
    report = Report(frames={
        "runs": per_run,
        "accuracy": accuracy,
        "ranks": tables.ranks(accuracy).reset_index(),
        "candidates": tables.status_table(runs).reset_index(),
        "wall_time": tables.wall_table(per_run).reset_index(),
    })
    for name, frame in report.frames.items():
        atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
    report.figure = write_best_so_far_panels(tables.best_so_far_curves(runs), out / FIGURE)
    frames = report.frames
    text = document.render(sweep_dir, per_run, accuracy, frames["ranks"].set_index("arm"),
                           frames["candidates"].set_index("arm"), frames["wall_time"].set_index("arm"),
                           FIGURE if report.figure else None, [f"{name}.csv" for name in frames])
    report.path = out / REPORT
    atomic_write_text(report.path, text)
    return report


def report_task(cfg: Any, out_dir: Path, logger: Any) -> None:
    """``evaluate.py task=report``: build the report into ``out_dir``, log it, print where it is."""
    report = build_report(cfg.sweep_dir, out_dir, final_dir=cfg.get("final_subdir") or FINAL_DIR)
    for name, frame in report.frames.items():
        logger.table(f"report/{name}", frame)
    if report.figure is not None:
        logger.image("report/best_so_far", report.figure)
    per_run = report.frames["runs"]
    logger.summary({"runs": len(per_run), "datasets": int(per_run["dataset"].nunique()),
                    "arms": int(per_run["arm"].nunique()), "runs_unfinished": int((~per_run["finished"]).sum()),
                    "runs_without_test": int(per_run["test_acc"].isna().sum())})
    print(to_markdown(document.dataset_by_arm(report.frames["accuracy"], "best_val_acc")))
    print(f"-> {report.path}")
