"""``search.executor=submitit``: each candidate is one job of submitit's executor (SLURM on a
cluster, local processes elsewhere), at most ``search.workers`` at a time, so one search can use
a cluster's GPUs. submitit submits, tracks and collects the jobs; this file only maps a job's
end to a candidate's result.

A job builds its data and trainer, trains its candidate and returns the result: each job starts
fresh (the price of scheduling by the cluster), so this pays off for candidates that train for
minutes (the paper's 16 epochs on a GPU), not for the embedded demo. A job that fails (killed,
out of memory, over its time limit) is recorded with status ``oom`` when the scheduler's message
says out of memory and ``error`` otherwise, and the search goes on. After a kill of the search,
its candidates in flight are submitted again on resume; jobs of the killed search still queued
or running are cancelled when the pool closes cleanly, and otherwise finish unread (cancel them
with ``scancel`` if the search was killed).
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from nas.search.workers.task import EvaluationContext, Task, failed_result

log = logging.getLogger(__name__)

OUT_OF_MEMORY = re.compile(r"out[ _-]of[ _-]memory|\boom\b", re.IGNORECASE)  # CUDA, SLURM, kernel


def run_task(nodes: dict[str, Any], task: dict[str, Any], threads: int) -> dict[str, Any]:
    """The job: build the evaluation and train one candidate (runs in the job's process)."""
    import torch

    torch.set_num_threads(threads)
    return EvaluationContext.build(nodes).evaluate(Task(**task))


class SubmititPool:
    def __init__(self, slots: int, nodes: dict[str, Any], folder: str | Path, cluster: str | None,
                 parameters: dict[str, Any], poll_s: float = 5.0, threads: int = 1):
        import submitit

        self.slots, self.nodes, self.poll_s, self.threads = int(slots), nodes, float(poll_s), int(threads)
        self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self.executor.update_parameters(**parameters)
        self.jobs: dict[int, tuple[Task, Any]] = {}

    def free(self) -> int:
        return self.slots - len(self.jobs)

    def submit(self, task: Task, arch: Any = None) -> None:
        job = self.executor.submit(run_task, self.nodes, task.to_dict(), self.threads)
        log.info("candidate %d: submitted job %s", task.index, job.job_id)
        self.jobs[task.index] = (task, job)

    def wait(self) -> list[tuple[Task, dict[str, Any]]]:
        while True:
            finished = [index for index, (_, job) in self.jobs.items() if job.done()]
            if finished:
                return [self._collect(index) for index in finished]
            time.sleep(self.poll_s)

    def _collect(self, index: int) -> tuple[Task, dict[str, Any]]:
        task, job = self.jobs.pop(index)
        try:
            return task, job.result()
        except Exception as err:  # noqa: BLE001 - any failure of the job is the candidate's
            text = f"{type(err).__name__}: {err}".strip()
            status = "oom" if OUT_OF_MEMORY.search(text) else "error"
            reason = f"job {job.job_id} failed: {text.splitlines()[0] if text else type(err).__name__}"
            log.warning("candidate %d: %s", index, reason)
            return task, failed_result(status, reason[:500])

    def close(self) -> None:
        for _, job in self.jobs.values():
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001 - best effort: the job may have ended meanwhile
                pass
        self.jobs.clear()
