"""The sweep's figure (the paper's): best-so-far validation accuracy, mean ± SE over seeds, one
panel per dataset with the arms overlaid, each arm in the same colour in every panel.

Rendered like the search figures (``nas.search.figures``: Agg, no pyplot, written atomically) and,
like them, a by-product: a figure that cannot be drawn is logged and skipped, never raised.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nas.report.tables import curve_band
from nas.search.figures import _placeholder, _save_atomic

log = logging.getLogger(__name__)

Curves = Mapping[str, Sequence[Sequence[float]]]  # arm -> one best-so-far curve per seed


def draw_arms(ax: Any, curves: Curves, colours: Mapping[str, str]) -> int:
    """Draw each arm's mean curve and its ± SE band on ``ax``; return how many arms were drawn."""
    drawn = 0
    for arm, seeds in curves.items():
        mean, se, count = curve_band(seeds)
        if not mean.size:
            continue
        n = int(count.max()) if count.size else 0
        x = np.arange(mean.size)
        ax.plot(x, mean, color=colours[arm], linewidth=1.6, marker="o" if mean.size == 1 else None,
                label=f"{arm} ({n} seed{'s' if n != 1 else ''})")
        ax.fill_between(x, mean - se, mean + se, color=colours[arm], alpha=0.2, linewidth=0)
        drawn += 1
    if drawn:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("iteration")
        ax.set_ylabel("best validation accuracy so far")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    else:
        _placeholder(ax, "no runs to compare yet")
    return drawn


def write_best_so_far_panels(panels: Mapping[str, Curves], out_path: str | os.PathLike[str],
                             title: str = "best so far: mean ± standard error over seeds") -> Path | None:
    """One panel per key of ``panels`` (a dataset, titled with it), up to three per row; returns the
    path, or ``None`` when it could not be written (logged)."""
    path = Path(out_path)
    try:
        names = list(panels) or [""]
        arms = sorted({arm for curves in panels.values() for arm in curves})
        colours = {arm: f"C{k % 10}" for k, arm in enumerate(arms)}
        ncols = min(3, len(names))
        nrows = math.ceil(len(names) / ncols)
        fig = Figure(figsize=(5.6 * ncols, 3.9 * nrows + 0.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, name in zip(axes, names, strict=False):
            draw_arms(ax, panels.get(name, {}), colours)
            ax.set_title(name, fontsize=10)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        fig.suptitle(title, fontsize=11)
        return _save_atomic(fig, path)
    except Exception:
        log.warning("sweep figure: could not write %s", path, exc_info=True)
        return None
