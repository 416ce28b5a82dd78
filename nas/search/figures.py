"""Search-run figures, written into the run directory and refreshed as the run goes.

``write_search_figures(records, out_dir)`` turns the archive (the list of dicts the runner writes to
``archive.jsonl``, one per evaluated candidate) into PNGs:

- ``best_so_far.png``: best validation accuracy against iteration, phase starts marked;
- ``accuracy_per_iteration.png``: every candidate's accuracy, coloured by phase (initial
  population, evolved, surrogate-chosen), with failures in a strip underneath, one row per status;
- ``params_vs_accuracy.png``: parameter count (log) against accuracy, coloured by iteration;
- ``predicted_vs_true.png``: surrogate prediction against accuracy with Kendall's tau and
  Spearman's rho (from :mod:`surrogates.metrics`) in the title; only when there are such pairs.

(Over 400 lines: four figures that share one reading of the archive into phases, colours and
failure rows; splitting them would spread that shared reading over four files.)

``write_sweep_figure(runs, out_path)`` compares arms of a sweep: mean ± standard error of the
best-so-far curves over seeds.

Why it is built this way:

- Figures are plain :class:`matplotlib.figure.Figure` objects rendered by Agg, never pyplot, so
  nothing opens a window, no global figure registry fills up in a long run, and nothing needs
  closing.
- Each PNG is rendered to a temporary file next to its target and moved into place with
  ``os.replace``: a run killed mid-write leaves the previous figure, never a truncated one.
- A figure is a by-product: one that fails to render is logged and skipped, never raised into the
  search loop. Empty input writes nothing; an archive with only failures still gets the failure
  strip and placeholder panels that say why they are empty.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from surrogates.metrics import kendall_tau, spearman

__all__ = [
    "write_search_figures",
    "write_sweep_figure",
    "best_so_far",
    "assign_phases",
    "PHASES",
]

log = logging.getLogger(__name__)

INITIAL_ORIGINS = frozenset({"random", "seed", "seed_copy"})
EVOLVED_ORIGINS = frozenset({"mutation", "fallback"})
SURROGATE_ORIGINS = frozenset({"surrogate"})

# Phase name -> (legend label, colour), in legend order.
PHASES: dict[str, tuple[str, str]] = {
    "initial": ("initial population", "tab:blue"),
    "evolved": ("evolved", "tab:orange"),
    "surrogate": ("surrogate-chosen", "tab:green"),
    "other": ("other", "tab:gray"),
}
FAILED_COLOUR = "tab:red"
DPI = 100
# Fixed margins instead of constrained layout: the layout engine measured every tick label and
# doubled the render time (~0.9 s -> ~0.5 s for four figures of 300 records).
MARGINS = {"left": 0.1, "right": 0.97, "bottom": 0.12, "top": 0.9}


# --------------------------------------------------------------------------------------- records
def _float_or_nan(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _is_ok(record: Mapping[str, Any]) -> bool:
    return record.get("status") == "ok" and math.isfinite(_float_or_nan(record.get("val_acc")))


def _sorted_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records in archive order (``index``, else their position)."""
    indexed = [
        (r.get("index") if isinstance(r.get("index"), int) else pos, pos, r)
        for pos, r in enumerate(records)
        if isinstance(r, Mapping)
    ]
    indexed.sort(key=lambda item: (item[0], item[1]))
    return [r for _, _, r in indexed]


def _placed_iterations(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """An x position for every record: its iteration, or for an uncounted one (a failure), the
    iteration it was attempted in, i.e. the next counted iteration in archive order (one past the
    last counted iteration when nothing counted follows)."""
    counted = [r.get("iteration") if isinstance(r.get("iteration"), int) else None for r in records]
    placed = np.empty(len(records), dtype=float)
    last = max((it for it in counted if it is not None), default=-1)
    following = last + 1
    for pos in range(len(records) - 1, -1, -1):
        if counted[pos] is not None:
            following = counted[pos]
            placed[pos] = counted[pos]
        else:
            placed[pos] = following
    return placed


def assign_phases(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Phase of each record (keys of :data:`PHASES`).

    ``initial``: origin random/seed/seed_copy before the first counted iteration whose origin is
    anything else; ``evolved``: mutation/fallback; ``surrogate``: surrogate; everything else
    (a late random candidate, post-hoc evaluations, unknown origins) is ``other``.
    """
    first_non_initial = min(
        (
            r["iteration"]
            for r in records
            if isinstance(r.get("iteration"), int) and r.get("origin") not in INITIAL_ORIGINS
        ),
        default=math.inf,
    )
    placed = _placed_iterations(records)
    phases = []
    for r, x in zip(records, placed, strict=True):
        origin = r.get("origin")
        if origin in INITIAL_ORIGINS and x < first_non_initial:
            phases.append("initial")
        elif origin in EVOLVED_ORIGINS:
            phases.append("evolved")
        elif origin in SURROGATE_ORIGINS:
            phases.append("surrogate")
        else:
            phases.append("other")
    return phases


def best_so_far(records: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``(iterations, best)``: every distinct counted iteration in increasing order and the best
    ``ok`` validation accuracy up to and including it (NaN before the first success).

    Sweeps build their per-seed curves from this (see :func:`write_sweep_figure`).
    """
    rows = [r for r in records if isinstance(r, Mapping) and isinstance(r.get("iteration"), int)]
    if not rows:
        return np.zeros(0, dtype=int), np.zeros(0)
    its = np.array([r["iteration"] for r in rows], dtype=int)
    accs = np.array([_float_or_nan(r.get("val_acc")) if _is_ok(r) else -np.inf for r in rows])
    iterations = np.unique(its)
    per_iteration = np.full(iterations.size, -np.inf)
    np.maximum.at(per_iteration, np.searchsorted(iterations, its), accs)
    best = np.maximum.accumulate(per_iteration)
    best[np.isneginf(best)] = np.nan
    return iterations, best


# --------------------------------------------------------------------------------------- writing
def _save_atomic(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _figure(size: tuple[float, float], **margins: float) -> Figure:
    fig = Figure(figsize=size, layout=None)
    fig.subplots_adjust(**{**MARGINS, **margins})
    return fig


def _placeholder(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _title(base: str, title: str) -> str:
    return f"{title}: {base}" if title else base


class _Archive:
    """Columns pulled out of the records once, shared by all figures."""

    def __init__(self, records: Iterable[Mapping[str, Any]]):
        self.records = _sorted_records(records)
        self.x = _placed_iterations(self.records)
        self.phase = np.array(assign_phases(self.records), dtype=object)
        self.ok = np.array([_is_ok(r) for r in self.records], dtype=bool)
        self.acc = np.array([_float_or_nan(r.get("val_acc")) for r in self.records])
        self.pred = np.array([_float_or_nan(r.get("prediction")) for r in self.records])
        self.params = np.array([_float_or_nan(r.get("num_params")) for r in self.records])
        self.status = [str(r.get("status", "unknown")) for r in self.records]
        self.n_failed = int((~self.ok).sum())

    def phase_starts(self) -> list[tuple[str, float]]:
        """First counted iteration of each non-initial phase that occurs, for vertical markers."""
        counted = np.array([isinstance(r.get("iteration"), int) for r in self.records], dtype=bool)
        starts = []
        for phase in ("evolved", "surrogate"):
            xs = self.x[counted & (self.phase == phase)]
            if xs.size:
                starts.append((phase, float(xs.min())))
        return starts


def _mark_phase_starts(ax: Any, archive: _Archive) -> None:
    """Dotted vertical lines where evolution and surrogate selection begin, named in the legend."""
    for phase, x in archive.phase_starts():
        label, colour = PHASES[phase]
        ax.axvline(x - 0.5, color=colour, linestyle=":", linewidth=1.2,
                   label=f"{label} from iteration {x:.0f}")


def _plot_best_so_far(archive: _Archive, title: str) -> Figure:
    fig = _figure((7, 4.2))
    ax = fig.add_subplot()
    iterations, best = best_so_far(archive.records)
    if not np.isfinite(best).any():
        _placeholder(ax, f"no successful candidate yet ({archive.n_failed} failed)")
        ax.set_title(_title("best validation accuracy so far", title))
        return fig
    ok = archive.ok
    ax.scatter(archive.x[ok], archive.acc[ok], s=8, color="0.75", label="each candidate", zorder=1)
    ax.step(iterations, best, where="post", color="black", linewidth=1.8, label="best so far")
    i_best = int(np.nanargmax(np.where(ok, archive.acc, np.nan)))
    ax.scatter(
        [archive.x[i_best]], [archive.acc[i_best]], marker="*", s=140, color="gold",
        edgecolor="black", zorder=3, label=f"best {archive.acc[i_best]:.4g} (iteration {archive.x[i_best]:.0f})",
    )
    _mark_phase_starts(ax, archive)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(_title("best validation accuracy so far", title))
    return fig


def _plot_accuracy_per_iteration(archive: _Archive, title: str) -> Figure:
    failed = ~archive.ok
    fig = _figure((8, 5.2) if failed.any() else (8, 4.2), left=0.12, bottom=0.1 if failed.any() else 0.12)
    if failed.any():
        ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=(4, 1.2))
    else:
        ax, strip = fig.add_subplot(), None
    if archive.ok.any():
        for phase, (label, colour) in PHASES.items():
            mask = archive.ok & (archive.phase == phase)
            if mask.any():
                ax.scatter(
                    archive.x[mask], archive.acc[mask], s=14, color=colour, alpha=0.85,
                    label=f"{label} ({int(mask.sum())})",
                )
        _mark_phase_starts(ax, archive)
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no successful candidate yet", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        ax.set_yticks([])
    if strip is not None:
        statuses = sorted({archive.status[i] for i in np.flatnonzero(failed)})
        rows = {s: k for k, s in enumerate(statuses)}
        ys = [rows[archive.status[i]] for i in np.flatnonzero(failed)]
        # Several failures of one status in one iteration share a point: bigger, with a count.
        points, counts = np.unique(np.column_stack([archive.x[failed], ys]), axis=0,
                                   return_counts=True)
        strip.scatter(points[:, 0], points[:, 1], marker="x", s=18 * np.sqrt(counts),
                      color=FAILED_COLOUR, linewidths=1)
        if (counts > 1).sum() <= 50:  # labels cost render time; skip them when crowded
            for (x, y), c in zip(points[counts > 1], counts[counts > 1], strict=True):
                strip.annotate(f"{c}", (x, y), xytext=(4, 2), textcoords="offset points",
                               fontsize=6, color=FAILED_COLOUR)
        strip.set_yticks(range(len(statuses)), statuses, fontsize=7)
        strip.set_ylim(-0.6, len(statuses) - 0.4)
        strip.set_ylabel("failed", fontsize=8)
        strip.grid(alpha=0.3, axis="x")
        strip.set_xlabel("iteration (failures at the iteration they were attempted in)")
        # Proxy entry so the main legend carries the failure count too.
        ax.scatter([], [], marker="x", color=FAILED_COLOUR, label=f"failed ({int(failed.sum())})")
    else:
        ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # shared with the strip
    if archive.x.size and np.ptp(archive.x) < 2:  # a single iteration: avoid a hair-thin x range
        ax.set_xlim(archive.x.min() - 1, archive.x.max() + 1)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(_title("validation accuracy per iteration", title))
    return fig


def _plot_params_vs_accuracy(archive: _Archive, title: str) -> Figure:
    fig = _figure((7.5, 4.2), right=0.99)
    ax = fig.add_subplot()
    mask = archive.ok & np.isfinite(archive.params) & (archive.params > 0)
    ax.set_title(_title("parameters vs validation accuracy", title))
    if not mask.any():
        _placeholder(ax, "no successful candidate with a parameter count yet")
        return fig
    points = ax.scatter(
        archive.params[mask], archive.acc[mask], c=archive.x[mask], cmap="viridis", s=16,
        alpha=0.9,
    )
    fig.colorbar(points, ax=ax, label="iteration")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3, which="both")
    return fig


def _plot_predicted_vs_true(archive: _Archive, title: str) -> Figure | None:
    mask = np.isfinite(archive.pred) & np.isfinite(archive.acc) & archive.ok
    if not mask.any():
        return None
    pred, true = archive.pred[mask], archive.acc[mask]
    tau, rho = kendall_tau(pred, true), spearman(pred, true)
    fig = _figure((5.8, 5.4), left=0.13, top=0.88)
    ax = fig.add_subplot()
    for phase, (label, colour) in PHASES.items():
        sel = archive.phase[mask] == phase
        if sel.any():
            ax.scatter(pred[sel], true[sel], s=16, color=colour, alpha=0.85,
                       label=f"{label} ({int(sel.sum())})")
    lo, hi = float(min(pred.min(), true.min())), float(max(pred.max(), true.max()))
    pad = 0.02 * (hi - lo) if hi > lo else 0.01
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", linestyle="--",
            linewidth=1, label="y = x")
    ax.set_xlabel("surrogate prediction")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(_title("surrogate: predicted vs true", title)
                 + f"\nn={pred.size}   Kendall τ={tau:.3f}   Spearman ρ={rho:.3f}", fontsize=10)
    return fig


_SEARCH_FIGURES: dict[str, Callable[[_Archive, str], Figure | None]] = {
    "best_so_far.png": _plot_best_so_far,
    "accuracy_per_iteration.png": _plot_accuracy_per_iteration,
    "params_vs_accuracy.png": _plot_params_vs_accuracy,
    "predicted_vs_true.png": _plot_predicted_vs_true,
}


def write_search_figures(
    records: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike[str], title: str = ""
) -> list[Path]:
    """Write the search figures for ``records`` into ``out_dir``; return the paths written.

    Never raises: a figure that cannot be drawn is logged and left out of the returned list.
    Nothing is written for an empty archive.
    """
    try:
        archive = _Archive(records or [])
    except Exception:  # malformed records must not stop a search
        log.warning("search figures: could not read the archive records", exc_info=True)
        return []
    if not archive.records:
        return []
    out = Path(out_dir)
    written = []
    for name, plot in _SEARCH_FIGURES.items():
        try:
            fig = plot(archive, title)
            if fig is not None:
                written.append(_save_atomic(fig, out / name))
        except Exception:
            log.warning("search figures: could not write %s", name, exc_info=True)
    return written


def write_sweep_figure(
    runs: Mapping[str, Sequence[Sequence[float]]],
    out_path: str | os.PathLike[str],
    title: str = "",
) -> Path | None:
    """Best-so-far curves of a sweep: per arm, the mean over seeds ± one standard error.

    ``runs`` maps an arm label to per-seed best-so-far arrays (e.g. ``best_so_far(records)[1]``);
    one panel of the sweep report's figure (:mod:`nas.report.figures`, which draws it and says how
    seeds of unequal length and NaNs are handled). Returns the path, or ``None`` if it could not be
    written (logged, never raised).
    """
    from nas.report.figures import write_best_so_far_panels  # it imports this module

    return write_best_so_far_panels({title: runs}, out_path,
                                    title="best so far: mean ± standard error over seeds")
