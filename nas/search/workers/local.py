"""``search.workers=N`` on one machine: N long-lived worker processes (``worker_process``).

Each worker keeps the dataset in memory on its own device (GPU ``(i // workers_per_gpu) mod
n_gpus``: ``devices``; on a CPU, one thread each) and trains one candidate at a time.

How workers start (``search.worker_start``): ``fork`` on a machine without GPUs, where a worker
is ready at once and shares the search's data in memory (the search imports Lightning once,
instead of each worker spending ~6-8 s on it); ``spawn`` with GPUs, where a forked CUDA state
is unusable: each worker then imports and loads its data itself, on its own GPU.

A worker that dies while training (a segfault; SIGKILL, which the kernel's out-of-memory killer
sends) is replaced by a new process on the same device, and its candidate is returned with status
``oom`` (SIGKILL) or ``error`` (anything else), so the search records it and goes on. A worker
that dies before it is ready (it could not build its data or trainer) stops the search with its
error: a replacement would fail the same way.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for_any
from typing import Any

from nas.search.errors import SearchError
from nas.search.workers.devices import worker_environment
from nas.search.workers.task import Task, failed_result

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    number: int
    process: Any
    conn: Any
    task: Task | None = None
    ready: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class LocalPool:
    def __init__(self, slots: int, source: Any, n_gpus: int = 0, workers_per_gpu: int = 1,
                 threads: int = 1, start_method: str = "spawn", first_gpu: int = 0):
        """``source``: the search's ``EvaluationContext`` (``fork``) or its config groups
        (``spawn``: ``task.context_nodes``)."""
        self.slots, self.source, self.n_gpus = int(slots), source, int(n_gpus)
        self.workers_per_gpu, self.threads, self.first_gpu = int(workers_per_gpu), int(threads), int(first_gpu)
        self.context = multiprocessing.get_context(start_method)
        self.workers: list[_Worker] = []
        self.replaced = 0
        for number in range(self.slots):
            self.workers.append(self._start(number))

    # ------------------------------------------------------------------------- interface
    def free(self) -> int:
        return sum(w.task is None for w in self.workers)

    def submit(self, task: Task, arch: Any = None) -> None:
        worker = next(w for w in self.workers if w.task is None)
        worker.task = task
        worker.conn.send(("task", task.to_dict()))

    def wait(self) -> list[tuple[Task, dict[str, Any]]]:
        """Block until at least one candidate is done (or its worker died); return them all."""
        done: list[tuple[Task, dict[str, Any]]] = []
        while not done:
            waitables = [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers]
            ready = set(wait_for_any(waitables))
            for position, worker in enumerate(list(self.workers)):
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                alive = True
                while alive and worker.conn.poll():  # a result sent just before it died comes first
                    results, alive = self._receive(worker)
                    done += results
                if not alive or worker.process.sentinel in ready:
                    done += self._replace(position, worker)
        return done

    def close(self) -> None:
        """Stop every worker: ask idle ones to exit, kill busy ones (their candidates are redone
        on resume), and wait for all."""
        for worker in self.workers:
            try:
                if worker.task is None:
                    worker.conn.send(("stop",))
                else:
                    worker.process.kill()
            except (BrokenPipeError, OSError):
                pass
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.conn.close()
        self.workers = []

    # ------------------------------------------------------------------------- workers
    def _start(self, number: int) -> _Worker:
        parent_end, child_end = self.context.Pipe()
        from nas.search.workers import worker_process

        process = self.context.Process(target=worker_process.main, name=f"nas-worker-{number}",
                                       args=(number, child_end, self.source, self.threads), daemon=True)
        with _environment(worker_environment(number, self.n_gpus, self.workers_per_gpu, self.threads,
                                             first=self.first_gpu)):
            process.start()
        child_end.close()
        return _Worker(number, process, parent_end)

    def _receive(self, worker: _Worker) -> tuple[list[tuple[Task, dict[str, Any]]], bool]:
        """One message of ``worker``: (finished candidates, whether the worker is still there)."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return [], False
        kind = message[0]
        if kind == "ready":
            worker.ready, worker.info = True, message[1]
            log.info("worker %d ready (pid %s, %s)", worker.number, message[1]["pid"], message[1]["device"])
            return [], True
        if kind == "setup_failed":
            raise SearchError(f"search worker {worker.number} could not start: {message[1]}")
        task, worker.task = worker.task, None
        if task is None or message[1] != task.index:
            raise RuntimeError(f"worker {worker.number} answered for candidate {message[1]}, "
                               f"which it was not training")
        return [(task, message[2])], True

    def _replace(self, position: int, worker: _Worker) -> list[tuple[Task, dict[str, Any]]]:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if not worker.ready:
            raise SearchError(f"search worker {worker.number} exited while starting ({_how(code)}); see the "
                              "messages above. Rerunning the same command resumes the search.")
        worker.conn.close()
        self.workers[position] = self._start(worker.number)
        self.replaced += 1
        if worker.task is None:
            log.warning("worker %d (pid %s) exited while idle (%s); started a new one", worker.number,
                        worker.process.pid, _how(code))
            return []
        status = "oom" if code == -signal.SIGKILL else "error"
        reason = (f"the worker process training it (pid {worker.process.pid}) was killed ({_how(code)})"
                  + ("; SIGKILL is what the kernel's out-of-memory killer sends" if status == "oom" else "")
                  + "; a new worker took its place")
        log.warning("candidate %d: %s", worker.task.index, reason)
        return [(worker.task, failed_result(status, reason))]


def _how(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


@contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for a child about to be started, and restore them after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
