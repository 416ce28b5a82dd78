"""Lightning callbacks used while training candidates."""
from __future__ import annotations

import time
from typing import Any

import lightning as L

from nas.training.record import TimeBudgetExceeded


class WallClockBudget(L.Callback):
    """Stop a candidate whose evaluation runs past ``budget_s`` seconds since ``start``.

    Checked after every training and evaluation batch (a ``time.perf_counter`` call: free), so a
    slow candidate overshoots by at most one batch. Raises :class:`TimeBudgetExceeded`, which the
    evaluation maps to status ``too_slow``. Lightning's own ``max_time`` is not used: it stops
    *gracefully*, which would report a half-trained accuracy as if it were a fitness.
    """

    def __init__(self, budget_s: float, start: float | None = None) -> None:
        self.budget_s = float(budget_s)
        self.start = time.perf_counter() if start is None else float(start)

    def _check(self, trainer: L.Trainer) -> None:
        elapsed = time.perf_counter() - self.start
        if elapsed > self.budget_s:
            raise TimeBudgetExceeded(
                f"wall-clock budget of {self.budget_s:g} s exceeded after {elapsed:.1f} s "
                f"(epoch {trainer.current_epoch + 1}; trainer.time_budget_s=null lifts it)"
            )

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self._check(trainer)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self._check(trainer)


def epoch_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """A ``CandidateModule.history`` row as logger metrics: ``train/loss``, ``train/lr``,
    ``train/epoch_seconds``, ``epoch`` and ``val/acc`` or ``test/acc`` when that epoch evaluated."""
    metrics = {
        "epoch": row["epoch"],
        "train/loss": row.get("train_loss"),
        "train/lr": row.get("lr"),
        "train/epoch_seconds": row.get("seconds"),
    }
    for key, value in row.items():
        if key.endswith("_acc"):
            metrics[f"{key[:-4]}/acc"] = value
    return metrics
