"""``search.workers=1``: each candidate is trained in the search's own process, when the runner
waits for it. The same calls in the same order as before workers existed, so the archive is
exactly what a one-candidate-at-a-time search always wrote."""
from __future__ import annotations

from typing import Any

from nas.search.workers.task import Task, evaluate_architecture


class InlinePool:
    slots = 1

    def __init__(self, space: Any, datamodule: Any, trainer_cfg: Any):
        self.space, self.datamodule, self.trainer_cfg = space, datamodule, trainer_cfg
        self.waiting: list[tuple[Task, Any]] = []

    def free(self) -> int:
        return self.slots - len(self.waiting)

    def submit(self, task: Task, arch: Any) -> None:
        self.waiting.append((task, arch))

    def wait(self) -> list[tuple[Task, dict[str, Any]]]:
        task, arch = self.waiting.pop(0)
        return [(task, evaluate_architecture(arch, self.datamodule, self.trainer_cfg, self.space, task.seed))]

    def close(self) -> None:
        self.waiting.clear()
