"""A rich progress bar for a search: iterations, current best, failures and the ETA."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SearchProgress:
    def __init__(self, total: int, completed: int, enabled: bool = True, label: str = "search"):
        self.enabled = enabled
        if not enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"), TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False)
        self._task = self._progress.add_task(label, total=total, completed=completed, best="-", failed=0)
        self._progress.start()

    def update(self, completed: int, best: float | None, failed: int) -> None:
        if self.enabled:
            self._progress.update(self._task, completed=completed, failed=failed,
                                  best="-" if best is None else f"{best:.4f}")

    def close(self) -> None:
        if self.enabled:
            self._progress.stop()
