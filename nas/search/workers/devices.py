"""Which GPU each worker of a search trains on: pure functions, testable without a GPU.

Worker ``i`` takes GPU ``(first + i // workers_per_gpu) mod n_gpus`` of the GPUs the search
sees: with ``workers_per_gpu=1`` that is ``i mod n_gpus`` from the first GPU (one worker per GPU,
spread over all of them); with ``workers_per_gpu=k`` the first k workers share one GPU, the next
k the next, and so on, so a search can pack several small candidates onto one GPU and leave the
others to other jobs. ``first`` (``first_gpu``) spreads the searches of a local parallel sweep:
job ``j`` of a Hydra multirun starts at GPU ``j x`` the GPUs one search uses. A
worker sees only its own GPU (``CUDA_VISIBLE_DEVICES``), where it is ``cuda:0``: everything that
asks for "the GPU" (data, trainer, proxies, a language model) lands on it.
"""
from __future__ import annotations

import os


def worker_gpu(worker: int, n_gpus: int, workers_per_gpu: int = 1, first: int = 0) -> int | None:
    """The position (among the visible GPUs) of worker ``worker``'s GPU; ``None`` without GPUs."""
    if worker < 0:
        raise ValueError(f"worker number {worker} is negative")
    if workers_per_gpu < 1:
        raise ValueError(f"search.workers_per_gpu must be >= 1, got {workers_per_gpu}")
    if n_gpus <= 0:
        return None
    return (int(first) + int(worker) // int(workers_per_gpu)) % int(n_gpus)


def first_gpu(job: int | None, workers: int, workers_per_gpu: int = 1) -> int:
    """Where the workers of Hydra job ``job`` start: after the GPUs of jobs 0..job-1, each using
    ``ceil(workers / workers_per_gpu)`` (0 for a single run, or outside Hydra)."""
    if not job:
        return 0
    return int(job) * -(-int(workers) // int(workers_per_gpu))


def visible_gpus(n_gpus: int, environ: dict[str, str] | None = None) -> list[str]:
    """The names of the ``n_gpus`` GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` spells them
    (``"2"``, ``"GPU-<uuid>"``), so that a worker can be given exactly one of them."""
    environ = os.environ if environ is None else environ
    listed = [d.strip() for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if "CUDA_VISIBLE_DEVICES" in environ and listed:
        return listed[:n_gpus]
    return [str(i) for i in range(n_gpus)]


def worker_environment(worker: int, n_gpus: int, workers_per_gpu: int = 1, threads: int = 1,
                       environ: dict[str, str] | None = None, first: int = 0) -> dict[str, str]:
    """The environment variables a worker process starts with: its one GPU (when there are GPUs)
    and its thread count for the native libraries (read when they load)."""
    from nas.device import THREAD_VARIABLES

    env = {name: str(threads) for name in THREAD_VARIABLES}
    position = worker_gpu(worker, n_gpus, workers_per_gpu, first)
    if position is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible_gpus(n_gpus, environ)[position]
    return env
