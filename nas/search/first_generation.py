"""The shared first generation: one trained initial population for every arm of an experiment.

The paper's arms (the RE baseline and each surrogate) start from the same trained population.
Runs that agree on ``first_generation_key`` (dataset, space, trainer, seed, population size,
seeds) share one file, ``<paths.output_dir>/first_generation/<dataset>/seed=<s>-pop=<p>-<digest>.json``:
a path built from the experiment, never from the run directory's depth, so a custom
``hydra.run.dir`` cannot scatter or mix caches.

Concurrency (two jobs of one sweep that start together): the job that creates
``<file>.lock`` atomically (``O_CREAT | O_EXCL``) trains the population; the others wait for the
file and load it. The owner refreshes the lock's modification time after every candidate; a lock
whose owner is gone (same host and its pid no longer runs, the same SLURM job before a requeue, or
no heartbeat for ``stale_s``) is taken over. The file itself is published with a hard link from a temporary file, which fails if
the file exists: a reader never sees a torn file and a finished file is never replaced.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class FirstGenerationTimeout(RuntimeError):
    """Waited ``wait_s`` for another job's first generation; the message says what to do."""


def first_generation_path(output_dir: str | os.PathLike, dataset: str, seed: int, population: int,
                          digest: str) -> Path:
    return Path(output_dir) / "first_generation" / dataset / f"seed={seed}-pop={population}-{digest}.json"


def publish(path: Path, data: dict[str, Any]) -> bool:
    """Write ``data`` to ``path`` unless it exists (atomic, exclusive). True if this call wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data))
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


class FirstGenerationLock:
    """``<file>.lock``: who is training the first generation, with a heartbeat."""

    def __init__(self, target: Path, stale_s: float):
        self.target = target
        self.path = target.with_name(target.name + ".lock")
        self.stale_s = float(stale_s)
        self.held = False

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._break_if_stale():
                    return False
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(),
                           "job": scheduler_job()}, fh)
            self.held = True
            return True
        return False

    def heartbeat(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except FileNotFoundError:  # removed by hand: take it again
                self.held = False
                self.try_acquire()

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def owner(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _break_if_stale(self) -> bool:
        """Remove the lock if its owner is gone; True if it was removed (or already was)."""
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        owner = self.owner()
        dead = owner.get("host") == socket.gethostname() and not _pid_alive(owner.get("pid"))
        ours = owner.get("job") is not None and owner.get("job") == scheduler_job()
        if not owner and age < 5.0:
            return False  # being written right now
        if dead or ours or age >= self.stale_s:
            why = ("its process has ended" if dead else "it is this job's own, from before a requeue" if ours
                   else f"no heartbeat for {age:.0f} s")
            log.warning("taking over the first-generation lock %s (%s)", self.path, why)
            self.path.unlink(missing_ok=True)
            return True
        return False


def wait_for(target: Path, lock: FirstGenerationLock, wait_s: float, poll_s: float = 2.0,
             on_wait: Callable[[dict], None] | None = None) -> bool:
    """Wait until ``target`` exists (True) or this process holds the lock (False: train it).

    Raises ``FirstGenerationTimeout`` after ``wait_s`` seconds.
    """
    deadline = time.monotonic() + float(wait_s)
    told = False
    while True:
        if target.exists():
            return True
        if lock.try_acquire():
            if target.exists():  # published between the two checks
                lock.release()
                return True
            return False
        if not told and on_wait is not None:
            on_wait(lock.owner())
            told = True
        if time.monotonic() >= deadline:
            owner = lock.owner()
            raise FirstGenerationTimeout(
                f"waited {wait_s:.0f} s for the first generation {target}, which another job "
                f"(host {owner.get('host', '?')}, pid {owner.get('pid', '?')}) is training. Rerun later, "
                f"raise search.first_generation_wait_s, delete {lock.path} if that job is gone, or train "
                "this run's own population with search.first_generation=null.")
        time.sleep(poll_s)


def scheduler_job() -> str | None:
    """This process's cluster job (``slurm:<job>`` or ``slurm:<array job>_<task>``), or None.

    A SLURM job keeps its id when it is requeued (preemption, timeout), possibly on another node:
    a lock that names our job was taken by our previous incarnation and is ours to take over,
    instead of waiting ``stale_s`` for our own heartbeat to age."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"slurm:{array}_{task}"
    job = os.environ.get("SLURM_JOB_ID")
    return f"slurm:{job}" if job else None


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError):
        return False
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
