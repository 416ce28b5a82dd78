"""The search's progress: a one-line rich bar on a terminal, one plain log line per candidate otherwise.

On a terminal the line is ``<run name> <bar> n/budget best 0.9123 failed 3 0:12:34 ETA 1:02:03``.
It always fits the console width: when the terminal is narrow, the parts go in this order
(least useful first) until it fits:

1. the elapsed time;
2. the run name is cut to 24 characters (``head…tail``: dataset and seed stay readable);
3. the failure count;
4. the best accuracy;
5. the run name is cut further, down to 10 characters;
6. the bar shrinks (it takes up to 40 characters, and keeps 20 until step 5 is done) down to 5;
7. the run name is left out.

The bar, ``n/budget`` and the ETA are never dropped (at 80 columns and well below).

With ``enabled=False`` (``search.progress=false``), or when stderr is not a terminal (a batch job's
log file), every :meth:`SearchProgress.update` writes one plain line through :mod:`logging`
(logger ``nas.search.progress``; to stderr when logging is not configured), e.g.::

    iteration 12/40 best 0.1830 failed 3 elapsed 0:01:02 eta 0:03:10 [cifar10/re-rf-zcp/seed=0]

``grep -E 'iteration [0-9]+/[0-9]+'`` finds them. The ETA is the mean time per iteration of this
process (a resumed search counts from where it resumed) times the iterations left, counting down
between updates.
"""
from __future__ import annotations

import logging
import sys
import time
from io import StringIO

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

log = logging.getLogger(__name__)

ELLIPSIS = "…"
LABEL_SHORT = 24  # step 2: the run name is cut to this many characters
LABEL_MIN = 10  # step 5: ... and to this many before the bar shrinks
BAR_MAX = 40
BAR_COMFORT = 20  # the bar keeps this many columns while the parts above are dropped
BAR_MIN = 5


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis in the middle (head and tail kept)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    tail = (width - 1) // 2
    head = width - 1 - tail
    return text[:head] + ELLIPSIS + text[len(text) - tail:]


def format_seconds(seconds: float | None) -> str:
    """``h:mm:ss`` (``-:--:--`` when unknown)."""
    if seconds is None:
        return "-:--:--"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def layout(width: int, label: str, count: str, best: str, failed: str, elapsed: str, eta: str
           ) -> tuple[list[tuple[str, str]], int]:
    """The parts shown at ``width`` columns, as ``(kind, text)`` in order, and the bar's width.

    Parts are separated by one space; the bar is the part of kind ``"bar"`` (its text is empty).
    """
    optional = {"best": best, "failed": failed, "elapsed": elapsed}
    label_width = len(label)

    def parts() -> list[tuple[str, str]]:
        out = [("label", shorten(label, label_width))] if label_width > 0 else []
        out += [("bar", ""), ("count", count)] + list(optional.items()) + [("eta", eta)]
        return out

    def room() -> int:  # the columns left for the bar
        shown = parts()
        return width - sum(cell_len(text) for _, text in shown) - (len(shown) - 1)

    for step in ("elapsed", "label", "failed", "best"):
        if room() >= BAR_COMFORT:
            break
        if step == "label":
            label_width = min(label_width, LABEL_SHORT)
        else:
            del optional[step]
    if room() < BAR_COMFORT and label_width > LABEL_MIN:  # cut the run name further ...
        label_width = max(LABEL_MIN, label_width - (BAR_COMFORT - room()))
    if room() < BAR_MIN:  # ... the bar shrinks, and only then the name goes
        label_width = 0
    if room() > BAR_MAX and label_width < len(label):  # space the bar cannot use goes back to the name
        label_width = min(len(label), label_width + room() - BAR_MAX)
    return parts(), max(BAR_MIN, min(BAR_MAX, room()))


class _Line:
    """The renderable rich's Live refreshes: the progress line, laid out for the console's width."""

    def __init__(self, progress: SearchProgress) -> None:
        self.progress = progress

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        p = self.progress
        now = time.monotonic()
        parts, bar_width = layout(
            options.max_width, p.label, f"{p.completed}/{p.total}", f"best {p.best_text}",
            f"failed {p.failed}", format_seconds(now - p.started), f"ETA {format_seconds(p.eta(now))}")
        grid = Table.grid(padding=(0, 1, 0, 0), pad_edge=False)
        cells = []
        for kind, text in parts:
            if kind == "bar":
                grid.add_column(width=bar_width, no_wrap=True)
                cells.append(ProgressBar(total=max(p.total, 1), completed=min(p.completed, p.total),
                                         width=bar_width))
            else:
                grid.add_column(no_wrap=True)
                cells.append(Text(text, style="bold" if kind == "label" else "", no_wrap=True))
        grid.add_row(*cells)
        yield grid


class SearchProgress:
    """Progress of one search: ``update(completed, best, failed)`` once per evaluated candidate.

    ``console`` (keyword only) renders the bar there instead of on stderr (tests).
    """

    def __init__(self, total: int, completed: int, enabled: bool = True, label: str = "search", *,
                 console: Console | None = None):
        self.enabled = enabled
        self.total = int(total)
        self.completed = self.start_completed = int(completed)
        self.label = str(label)
        self.best_text = "-"
        self.failed = 0
        self.started = self._last_update = time.monotonic()
        self._per_iteration: float | None = None
        self._live: Live | None = None
        self._closed = False
        console = console if console is not None else Console(stderr=True)
        if enabled and console.is_terminal:
            self._live = Live(_Line(self), console=console, refresh_per_second=2, transient=False)
            self._live.start()

    @property
    def plain(self) -> bool:
        """Whether updates are written as plain log lines (no live bar)."""
        return self._live is None

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left: mean seconds per iteration (this process) × iterations left, less the time since."""
        if self.completed >= self.total:
            return 0.0
        if self._per_iteration is None:
            return None
        now = time.monotonic() if now is None else now
        return max(0.0, self._per_iteration * (self.total - self.completed) - (now - self._last_update))

    def update(self, completed: int, best: float | None, failed: int) -> None:
        if self._closed:
            return
        now = time.monotonic()
        self.completed, self.failed = int(completed), int(failed)
        self.best_text = "-" if best is None else f"{best:.4f}"
        done = self.completed - self.start_completed
        if done > 0:
            self._per_iteration = (now - self.started) / done
        self._last_update = now
        if self._live is not None:
            self._live.refresh()
        else:
            self._write(self.line(now))

    def line(self, now: float | None = None) -> str:
        """The plain line: ``iteration n/budget best b failed f elapsed h:mm:ss eta h:mm:ss [label]``."""
        now = time.monotonic() if now is None else now
        return (f"iteration {self.completed}/{self.total} best {self.best_text} failed {self.failed} "
                f"elapsed {format_seconds(now - self.started)} eta {format_seconds(self.eta(now))} "
                f"[{self.label}]")

    def render(self, width: int) -> str:
        """The bar line as text at ``width`` columns (what the terminal shows, without colours)."""
        console = Console(width=width, file=StringIO(), record=True, color_system=None, legacy_windows=False)
        console.print(_Line(self))
        return console.export_text().rstrip("\n")

    def _write(self, text: str) -> None:
        if log.hasHandlers():  # e.g. Hydra's console and <run_dir>/search.log
            log.info(text)
        else:  # logging not configured (library use): still say it
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        self._closed = True
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
