"""Aggregate a sweep of searches: per dataset and arm, the best accuracy over seeds (mean ±
standard error) as a table, and best-so-far curves as a figure (DESIGN §1.4).

A sweep directory holds run directories laid out as ``<dataset>/<arm>/seed=<s>/archive.jsonl``
(``outputs/multirun/<sweep_name>`` or ``outputs/search``).
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from nas.markdown import to_markdown
from nas.search.archive import read_archive
from nas.search.figures import best_so_far, write_sweep_figure


def find_runs(sweep_dir: str | Path) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """(dataset, arm) -> {seed label: archive records}."""
    sweep_dir = Path(sweep_dir)
    runs: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(dict)
    for archive in sorted(sweep_dir.rglob("archive.jsonl")):
        run_dir = archive.parent
        if "restarted-" in str(run_dir) or not run_dir.name.startswith("seed="):
            continue
        runs[(run_dir.parents[1].name, run_dir.parent.name)][run_dir.name] = read_archive(archive)
    return dict(runs)


def summarise(runs) -> pd.DataFrame:
    rows = []
    for (dataset, arm), seeds in sorted(runs.items()):
        finals = []
        for records in seeds.values():
            accs = [r["val_acc"] for r in records if r.get("status") == "ok" and r.get("val_acc") is not None]
            if accs:
                finals.append(max(accs))
        n = len(finals)
        mean = float(np.mean(finals)) if n else math.nan
        se = float(np.std(finals, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        iterations = [sum(1 for r in records if isinstance(r.get("iteration"), int)) for records in seeds.values()]
        failed = [sum(1 for r in records if r.get("status") != "ok") for records in seeds.values()]
        rows.append({"dataset": dataset, "arm": arm, "seeds": len(seeds), "best_val_acc_mean": mean,
                     "best_val_acc_se": se, "iterations_mean": float(np.mean(iterations)),
                     "failed_mean": float(np.mean(failed))})
    return pd.DataFrame(rows, columns=["dataset", "arm", "seeds", "best_val_acc_mean", "best_val_acc_se",
                                       "iterations_mean", "failed_mean"])


def summary_markdown(table: pd.DataFrame) -> str:
    """``summarise``'s table as markdown: best accuracy as mean ± standard error (4 decimals)."""
    cells = pd.DataFrame({
        "arm": table["arm"],
        "seeds": table["seeds"].astype(str),
        "best val acc (mean ± SE)": [f"{m:.4f}" + ("" if math.isnan(se) else f" ± {se:.4f}")
                                     for m, se in zip(table["best_val_acc_mean"], table["best_val_acc_se"], strict=True)],
        "iterations": [f"{v:.0f}" for v in table["iterations_mean"]],
        "failed": [f"{v:.1f}" for v in table["failed_mean"]],
    }, dtype=object).set_axis(pd.Index(table["dataset"], name="dataset"))
    return to_markdown(cells) + "\n"


def aggregate_sweep(sweep_dir: str | Path, out_dir: str | Path) -> tuple[pd.DataFrame, list[Path]]:
    """Write ``sweep_summary.{csv,md}`` and one ``sweep_<dataset>.png`` per dataset into ``out_dir``."""
    runs = find_runs(sweep_dir)
    if not runs:
        raise FileNotFoundError(f"no <dataset>/<arm>/seed=<s>/archive.jsonl under {sweep_dir}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = summarise(runs)
    table.to_csv(out_dir / "sweep_summary.csv", index=False)
    (out_dir / "sweep_summary.md").write_text(summary_markdown(table))
    figures = []
    for dataset in sorted({d for d, _ in runs}):
        curves = {arm: [best_so_far(records)[1] for records in seeds.values()]
                  for (d, arm), seeds in runs.items() if d == dataset}
        path = write_sweep_figure(curves, out_dir / f"sweep_{dataset}.png", title=f"{dataset}: best so far")
        if path is not None:
            figures.append(path)
    return table, figures


def sweep_task(cfg, out_dir: Path, logger) -> None:
    """``evaluate.py task=sweep``: aggregate ``cfg.sweep_dir`` into ``out_dir`` and print the table."""
    table, figures = aggregate_sweep(cfg.sweep_dir, out_dir)
    logger.table("sweep_summary", table)
    logger.summary({"runs": int(table["seeds"].sum()), "arms": len(table)})
    print(summary_markdown(table), end="")
    print(f"-> {out_dir} ({len(figures)} figure(s))")
