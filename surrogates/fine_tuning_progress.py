"""Progress of an offline fine-tuning: a rich bar with the loss and the ETA on a terminal, a plain
log line every tenth of the steps otherwise (a batch job's log), e.g.::

    fine-tuning step 120/1200 (epoch 1/15) loss 0.0213 elapsed 0:01:10 eta 0:10:30
"""
from __future__ import annotations

import logging
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nas.search.progress import format_seconds

log = logging.getLogger(__name__)


class FineTuneProgress:
    """``step(step, total, loss)`` after every optimiser step; ``close()`` at the end."""

    def __init__(self, total: int, epochs: int, enabled: bool = True, *, console: Console | None = None):
        self.total, self.epochs = int(total), int(epochs)
        self.started = time.monotonic()
        self._next_line = 0
        self._bar = None
        console = console if console is not None else Console(stderr=True)
        if enabled and console.is_terminal:
            self._bar = Progress(TextColumn("fine-tuning"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[epoch]} loss {task.fields[loss]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=console, transient=False)
            self._task = self._bar.add_task("fine-tuning", total=self.total, epoch="", loss="-")
            self._bar.start()

    def line(self, step: int, loss: float, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = now - self.started
        eta = elapsed / step * (self.total - step) if step else None
        epoch = min(self.epochs, 1 + (step - 1) * self.epochs // max(1, self.total))
        return (f"fine-tuning step {step}/{self.total} (epoch {epoch}/{self.epochs}) loss {loss:.4g} "
                f"elapsed {format_seconds(elapsed)} eta {format_seconds(eta)}")

    def step(self, step: int, total: int, loss: float) -> None:
        if self._bar is not None:
            epoch = min(self.epochs, 1 + (step - 1) * self.epochs // max(1, self.total))
            self._bar.update(self._task, completed=step, epoch=f"epoch {epoch}/{self.epochs}", loss=f"{loss:.4g}")
        elif step >= self._next_line or step == self.total:
            self._next_line = step + max(1, self.total // 10)
            log.info(self.line(step, loss))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
