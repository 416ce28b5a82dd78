"""The numbers of a sweep report, as pandas frames: nothing here reads files or formats text, so
each number can be checked by hand against a few synthetic runs (``tests/test_report_tables.py``).

Conventions (the paper's):

- a run's **best validation accuracy** is the best ``val_acc`` of its ``ok`` candidates;
- **mean ± SE** over seeds: the mean and the standard error, sample standard deviation
  (``ddof=1``) over sqrt(n), of the runs that have the value; the SE is NaN for one value;
- **rank**: within each dataset, arms ranked by mean best validation accuracy, 1 = best, ties
  given the average of the ranks they span; an arm's average rank is the mean over the datasets
  where it has a value;
- **prospective Kendall τ**: per run, the surrogate's ``prediction`` recorded when each candidate
  was chosen against the candidate's true ``val_acc``, over the ``ok`` candidates that have both
  (what the search logs as ``surrogate/kendall_tau``, here over the whole run); NaN for a run with
  fewer than two such pairs (an arm without a surrogate);
- **wall time**: ``result.json``'s ``wall_seconds`` (every start of the run added up); for a run
  that has not finished, the sum of its candidates' recorded ``seconds``.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nas.report.collect import Run
from nas.search.figures import best_so_far
from surrogates.metrics import kendall_tau

MEAN_SE_COLUMNS = ("best_val_acc", "test_acc", "kendall_tau")


def _finite(value: Any) -> float:
    """``value`` as a float, NaN when it is missing or not a number (``None``, a string, inf)."""
    if isinstance(value, bool):
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def mean_se(values: Iterable[Any]) -> tuple[float, float, int]:
    """``(mean, standard error, n)`` over the finite values: SE = std(ddof=1) / sqrt(n)."""
    x = np.array([v for v in map(_finite, values) if not math.isnan(v)], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, 0
    se = float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), se, int(x.size)


# --------------------------------------------------------------------------------- per run
def _ok_accuracies(records: Sequence[Mapping[str, Any]]) -> list[float]:
    return [a for a in (_finite(r.get("val_acc")) for r in records if r.get("status") == "ok")
            if not math.isnan(a)]


def best_val_acc(records: Sequence[Mapping[str, Any]]) -> float:
    """The best validation accuracy of the ``ok`` candidates (NaN if none)."""
    return max(_ok_accuracies(records), default=math.nan)


def prospective_tau(records: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """``(Kendall τ, pairs)`` of the predictions made at choice time against the true accuracies."""
    pairs = [(_finite(r.get("prediction")), _finite(r.get("val_acc"))) for r in records if r.get("status") == "ok"]
    pairs = [(p, t) for p, t in pairs if not (math.isnan(p) or math.isnan(t))]
    if len(pairs) < 2:
        return math.nan, len(pairs)
    pred, true = zip(*pairs, strict=True)
    return kendall_tau(pred, true), len(pairs)


def final_test_acc(final: Mapping[str, Any] | None) -> float:
    """``test_acc`` of a final-test ``result.json`` when it trained (``status`` ok), else NaN."""
    if not final or final.get("status", "ok") != "ok":
        return math.nan
    return _finite(final.get("test_acc"))


def wall_seconds(run: Run) -> float:
    """The run's wall time: ``result.json`` when finished, else its candidates' seconds added up."""
    if run.result is not None and not math.isnan(_finite(run.result.get("wall_seconds"))):
        return _finite(run.result["wall_seconds"])
    seconds = (_finite(v) for r in run.records for v in (r.get("seconds") or {}).values())
    return float(sum(v for v in seconds if not math.isnan(v)))


def status_counts(records: Sequence[Mapping[str, Any]]) -> Counter:
    """``trained`` (ok, seed copies excluded: they were not trained again), ``seed_copy``, and one
    count per failure status (``nan``, ``too_slow``, ``zero_acc``, ...)."""
    counts: Counter = Counter()
    for r in records:
        status = str(r.get("status", "unknown"))
        if status == "ok":
            counts["seed_copy" if r.get("origin") == "seed_copy" else "trained"] += 1
        else:
            counts[status] += 1
    return counts


def run_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: every per-run number the report aggregates (``runs.csv``)."""
    rows = []
    for run in runs:
        tau, pairs = prospective_tau(run.records)
        counts = status_counts(run.records)
        rows.append({"dataset": run.dataset, "arm": run.arm, "seed": run.seed,
                     "best_val_acc": best_val_acc(run.records), "test_acc": final_test_acc(run.final),
                     "kendall_tau": tau, "tau_pairs": pairs, "wall_seconds": wall_seconds(run),
                     "finished": run.result is not None, "has_final": run.final is not None,
                     "evaluated": len(run.records), "trained": counts["trained"],
                     "seed_copies": counts["seed_copy"],
                     "failed": sum(v for k, v in counts.items() if k not in ("trained", "seed_copy")),
                     "path": str(run.path)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- aggregates
def accuracy_table(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × arm: ``seeds`` (runs) and, for best val, test and τ, ``<name>_mean``,
    ``<name>_se`` and ``<name>_n`` (runs that have the value)."""
    rows = []
    for (dataset, arm), group in per_run.groupby(["dataset", "arm"], sort=True):
        row: dict[str, Any] = {"dataset": dataset, "arm": arm, "seeds": len(group)}
        for column in MEAN_SE_COLUMNS:
            mean, se, n = mean_se(group[column])
            row.update({f"{column}_mean": mean, f"{column}_se": se, f"{column}_n": n})
        rows.append(row)
    return pd.DataFrame(rows)


def best_arms(table: pd.DataFrame, column: str) -> set[tuple[str, str]]:
    """The (dataset, arm) pairs with the highest ``column`` in their dataset (all of them on a tie)."""
    best = set()
    for dataset, group in table.groupby("dataset"):
        values = group[column].astype(float)
        if values.notna().any():
            top = values.max()
            best |= {(dataset, arm) for arm, v in zip(group["arm"], values, strict=True) if v == top}
    return best


def ranks(table: pd.DataFrame, column: str = "best_val_acc_mean") -> pd.DataFrame:
    """Arms × datasets: each arm's rank in each dataset (1 = best, ties averaged), then
    ``average_rank`` and ``datasets`` (how many it was ranked in), best average first."""
    wide = table.pivot(index="arm", columns="dataset", values=column).astype(float)
    ranked = wide.rank(axis=0, ascending=False, method="average", na_option="keep")
    ranked.columns = [str(c) for c in ranked.columns]
    ranked["average_rank"] = ranked.mean(axis=1, skipna=True)
    ranked["datasets"] = wide.notna().sum(axis=1).astype(int)
    return ranked.sort_values("average_rank", kind="stable", na_position="last")


def status_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Per arm, over all its runs: ``runs``, ``evaluated``, ``trained``, ``seed_copies``,
    ``failed`` and one column per failure status (totals, not means)."""
    totals: dict[str, Counter] = {}
    n_runs: Counter = Counter()
    for run in runs:
        totals.setdefault(run.arm, Counter()).update(status_counts(run.records))
        totals[run.arm]["evaluated"] += len(run.records)
        n_runs[run.arm] += 1
    statuses = sorted({k for c in totals.values() for k in c} - {"trained", "seed_copy", "evaluated"})
    rows = []
    for arm in sorted(totals):
        c = totals[arm]
        rows.append({"arm": arm, "runs": n_runs[arm], "evaluated": c["evaluated"], "trained": c["trained"],
                     "seed_copies": c["seed_copy"], "failed": sum(c[s] for s in statuses),
                     **{s: c[s] for s in statuses}})
    return pd.DataFrame(rows).set_index("arm")


def wall_table(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per arm: ``runs``, ``finished``, and the wall time per run (mean, SE) and in total, in seconds."""
    rows = []
    for arm, group in per_run.groupby("arm", sort=True):
        mean, se, _ = mean_se(group["wall_seconds"])
        rows.append({"arm": arm, "runs": len(group), "finished": int(group["finished"].sum()),
                     "wall_seconds_mean": mean, "wall_seconds_se": se,
                     "wall_seconds_total": float(group["wall_seconds"].sum())})
    return pd.DataFrame(rows).set_index("arm")


# ----------------------------------------------------------------------------- curves
def best_so_far_curves(runs: Sequence[Run]) -> dict[str, dict[str, list[np.ndarray]]]:
    """dataset -> arm -> one best-so-far curve per seed (``nas.search.figures.best_so_far``)."""
    curves: dict[str, dict[str, list[np.ndarray]]] = {}
    for run in runs:
        curves.setdefault(run.dataset, {}).setdefault(run.arm, []).append(best_so_far(run.records)[1])
    return curves


def curve_band(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, se, n)`` per iteration over seeds' curves, cut to the shortest (a seed still running
    would otherwise pull the mean down at the end). NaNs (before a seed's first success) are left
    out at that iteration; the SE is 0 where fewer than two seeds have a value."""
    arrays = [np.asarray(c, dtype=float).ravel() for c in curves]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
    length = min(a.size for a in arrays)
    stack = np.stack([a[:length] for a in arrays])
    valid = np.isfinite(stack)
    count = valid.sum(axis=0)
    filled = np.where(valid, stack, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / count
        var = ((filled - mean) ** 2 * valid).sum(axis=0) / (count - 1)
        se = np.where(count > 1, np.sqrt(var / count), 0.0)
    return mean, se, count
