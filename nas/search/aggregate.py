"""``evaluate.py task=sweep``: the quick look at a sweep, the first table and the figure of
``task=report`` (:mod:`nas.report`) computed by the same functions: per dataset × arm the best
validation accuracy, mean ± standard error over seeds, and the best-so-far curves.

A sweep directory holds run directories laid out as ``<dataset>/<arm>/seed=<s>/archive.jsonl``
(``outputs/multirun/<sweep_name>`` or ``outputs/search``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nas.logging import atomic_write_text
from nas.markdown import to_markdown
from nas.report.collect import collect_runs
from nas.report.document import dataset_by_arm
from nas.report.figures import write_best_so_far_panels
from nas.report.tables import accuracy_table, best_so_far_curves, run_table

SUMMARY, FIGURE = "sweep_summary", "best_so_far.png"


def aggregate_sweep(sweep_dir: str | Path, out_dir: str | Path) -> tuple[pd.DataFrame, list[Path]]:
    """Write ``sweep_summary.{csv,md}`` and ``best_so_far.png`` into ``out_dir``; return the
    dataset × arm table (``nas.report.tables.accuracy_table``) and the figures written."""
    runs = collect_runs(sweep_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = accuracy_table(run_table(runs))
    atomic_write_text(out / f"{SUMMARY}.csv", table.to_csv(index=False))
    atomic_write_text(out / f"{SUMMARY}.md", summary_markdown(table))
    figure = write_best_so_far_panels(best_so_far_curves(runs), out / FIGURE)
    return table, [figure] if figure is not None else []


def summary_markdown(table: pd.DataFrame) -> str:
    """Datasets × arms, best validation accuracy mean ± SE, the best arm of each dataset in bold."""
    return to_markdown(dataset_by_arm(table, "best_val_acc")) + "\n"


def sweep_task(cfg, out_dir: Path, logger) -> None:
    """``evaluate.py task=sweep``: aggregate ``cfg.sweep_dir`` into ``out_dir`` and print the table."""
    table, figures = aggregate_sweep(cfg.sweep_dir, out_dir)
    logger.table("sweep_summary", table)
    for figure in figures:
        logger.image("sweep/best_so_far", figure)
    logger.summary({"runs": int(table["seeds"].sum()), "arms": int(table["arm"].nunique())})
    print(summary_markdown(table), end="")
    print(f"-> {out_dir} ({len(figures)} figure(s); the full report: task=report)")
