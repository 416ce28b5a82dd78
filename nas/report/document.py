"""``report.md``: the frames of :mod:`nas.report.tables` as the paper's tables, in Markdown.

Only formatting lives here (cells as text, the best arm in bold, the notes on what is missing);
every table goes through the project's one Markdown writer, :func:`nas.markdown.to_markdown`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from nas.markdown import to_markdown
from nas.report.tables import best_arms

DIGITS = 4
MISSING = "-"


def mean_se_cell(mean: float, se: float, n: int, expected: int, bold: bool = False) -> str:
    """``0.8123 ± 0.0100``; the SE left out for one value, ``(n=2)`` when fewer values than
    ``expected`` seeds, ``-`` for none, ``**...**`` for the best arm."""
    if not n or math.isnan(mean):
        return MISSING
    text = f"{mean:.{DIGITS}f}" + ("" if math.isnan(se) else f" ± {se:.{DIGITS}f}")
    if n < expected:
        text += f" (n={n})"
    return f"**{text}**" if bold else text


def duration(seconds: float) -> str:
    """Seconds as ``h:mm:ss`` (``-`` when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def dataset_by_arm(table: pd.DataFrame, name: str, mark_best: bool = True) -> pd.DataFrame:
    """Datasets × arms of ``<name>_mean ± <name>_se`` cells, the best arm of each dataset in bold."""
    expected = int(table["seeds"].max())
    best = best_arms(table, f"{name}_mean") if mark_best else set()
    cells = {(row.dataset, row.arm): mean_se_cell(getattr(row, f"{name}_mean"), getattr(row, f"{name}_se"),
                                                  getattr(row, f"{name}_n"), expected, (row.dataset, row.arm) in best)
             for row in table.itertuples()}
    datasets, arms = sorted(table["dataset"].unique()), sorted(table["arm"].unique())
    return pd.DataFrame([[cells.get((d, a), MISSING) for a in arms] for d in datasets],
                        index=pd.Index(datasets, name="dataset"), columns=arms, dtype=object)


def ranks_cells(ranks: pd.DataFrame) -> pd.DataFrame:
    """The rank table with ranks as ``1``/``1.5`` and the average to two decimals."""
    def rank(v: float) -> str:
        return MISSING if math.isnan(v) else f"{v:g}"

    datasets = ranks.drop(columns=["average_rank", "datasets"])
    cells = pd.DataFrame({c: [rank(v) for v in datasets[c]] for c in datasets.columns}, index=ranks.index, dtype=object)
    cells["average rank"] = [MISSING if math.isnan(v) else f"{v:.2f}" for v in ranks["average_rank"]]
    cells["datasets"] = ranks["datasets"].astype(str)
    cells.index.name = "arm"
    return cells


def wall_cells(wall: pd.DataFrame) -> pd.DataFrame:
    """The wall-time table as ``h:mm:ss``: per run (mean ± SE) and in total."""
    per_run = [duration(m) + ("" if math.isnan(s) else f" ± {duration(s)}")
               for m, s in zip(wall["wall_seconds_mean"], wall["wall_seconds_se"], strict=True)]
    return pd.DataFrame({"runs": wall["runs"].astype(str), "finished": wall["finished"].astype(str),
                         "per run (mean ± SE)": per_run,
                         "total": [duration(v) for v in wall["wall_seconds_total"]]},
                        index=wall.index, dtype=object)


def _section(title: str, text: str, table: pd.DataFrame | None = None) -> str:
    body = f"## {title}\n\n{text}\n"
    return body + ("" if table is None else "\n" + to_markdown(table) + "\n")


def render(sweep_dir: str | Path, per_run: pd.DataFrame, accuracy: pd.DataFrame, ranks: pd.DataFrame,
           status: pd.DataFrame, wall: pd.DataFrame, figure: str | None, files: Sequence[str]) -> str:
    """The whole ``report.md``."""
    n_runs = len(per_run)
    datasets, arms = per_run["dataset"].nunique(), per_run["arm"].nunique()
    seeds = ", ".join(sorted(per_run["seed"].astype(str).unique(), key=lambda s: (len(s), s)))
    unfinished = int((~per_run["finished"]).sum())
    no_test = int(per_run["test_acc"].isna().sum())
    parts = [f"# Sweep report\n\n`{sweep_dir}`: {n_runs} run{'s' if n_runs != 1 else ''}, "
             f"{datasets} dataset{'s' if datasets != 1 else ''} × {arms} arm{'s' if arms != 1 else ''}, "
             f"seeds {seeds}."
             + (f" {unfinished} run{'s have' if unfinished != 1 else ' has'} not finished (no `result.json`): "
                f"{'their' if unfinished != 1 else 'its'} numbers are those of the candidates evaluated so far."
                if unfinished else "") + "\n"]
    parts.append(_section(
        "Best validation accuracy",
        "Each run's best validation accuracy, mean ± standard error over seeds (sample standard deviation "
        "/ √n); the best arm of each dataset in **bold**; `(n=k)`: only k seeds have a value.",
        dataset_by_arm(accuracy, "best_val_acc")))
    test_note = ("The best architecture of each run retrained on train+valid with `trainer=final` and tested "
                 "(`<run>/final/result.json`, `test_acc`); mean ± SE over seeds, the best arm in **bold**.")
    if no_test:
        test_note += (f" {no_test} of {n_runs} runs have no final test accuracy yet (`-`: no "
                      "`<run>/final/result.json` with status `ok` and a `test_acc`).")
    parts.append(_section("Final test accuracy", test_note, dataset_by_arm(accuracy, "test_acc")))
    parts.append(_section(
        "Average rank",
        "Each arm's rank within each dataset by mean best validation accuracy (1 = best, ties share the "
        "average of their ranks), and its mean over the datasets where it ran.", ranks_cells(ranks)))
    parts.append(_section(
        "Candidates trained and failed",
        "Totals over each arm's runs: candidates evaluated, trained (`ok`), copies of a trained seed "
        "architecture (`seed_copies`, not trained again) and failed, by status.", status))
    parts.append(_section(
        "Surrogate ranking (prospective Kendall τ)",
        "Per run, Kendall's τ between the surrogate's prediction when each candidate was chosen and its "
        "true validation accuracy (the `ok` candidates with a prediction); mean ± SE over seeds. "
        "`-`: the arm records no predictions.", dataset_by_arm(accuracy, "kendall_tau", mark_best=False)))
    parts.append(_section(
        "Wall time", "Per arm, `h:mm:ss`: each run's `wall_seconds` from `result.json` (for an unfinished run "
        "the sum of its candidates' timings), mean ± SE per run, and the total.", wall_cells(wall)))
    if figure:
        parts.append(_section("Best so far", "Best validation accuracy so far against iteration, mean ± SE "
                              f"over seeds, one panel per dataset.\n\n![best so far]({figure})"))
    parts.append(_section("Files", "\n".join(f"- [`{f}`]({f})" for f in files)))
    return "\n".join(parts)
