"""Where a search's candidates are trained: in its own process (``search.workers=1``), in N local
worker processes, or as submitit jobs (``search.executor=submitit``). Every pool has the same
four calls: ``free()`` (slots for more candidates), ``submit(task, arch)``, ``wait()`` (the
candidates finished since, at least one) and ``close()``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nas.search.errors import SearchError
from nas.search.workers.devices import first_gpu, visible_gpus, worker_environment, worker_gpu
from nas.search.workers.task import Task, context_nodes

__all__ = ["Task", "first_gpu", "make_pool", "visible_gpus", "worker_environment", "worker_gpu"]

EXECUTORS = ("local", "submitit")


def pool_settings(cfg: DictConfig) -> tuple[int, str]:
    """``(workers, executor)`` from the search config, checked: a bad value is a one-line error."""
    settings = cfg.search
    workers, executor = settings.get("workers", 1), str(settings.get("executor", "local"))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SearchError(f"search.workers must be a whole number >= 1 (candidates trained at once), got {workers!r}")
    if executor not in EXECUTORS:
        raise SearchError(f"search.executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    per_gpu = settings.get("workers_per_gpu", 1)
    if isinstance(per_gpu, bool) or not isinstance(per_gpu, int) or per_gpu < 1:
        raise SearchError(f"search.workers_per_gpu must be a whole number >= 1, got {per_gpu!r}")
    return workers, executor


def make_pool(cfg: DictConfig, run_dir: Path, space: Any, datamodule: Any, trainer_cfg: Any):
    """The pool ``cfg.search`` asks for. One local worker trains in this process (the archive is
    then exactly a sequential search's); more start their processes now, so that they load their
    data while the search sets itself up."""
    workers, executor = pool_settings(cfg)
    if executor == "local" and workers == 1:
        from nas.search.workers.inline import InlinePool

        return InlinePool(space, datamodule, trainer_cfg)
    if executor == "submitit":
        nodes = context_nodes(cfg)
        from nas.search.workers.submitit_pool import SubmititPool

        options = OmegaConf.to_container(cfg.search.get("submitit") or {}, resolve=True)
        folder = options.pop("folder", None) or run_dir / "submitit"
        cluster = options.pop("cluster", None)
        poll_s = float(options.pop("poll_s", 5.0))
        threads = int(options.get("cpus_per_task", 1) or 1)
        parameters = {k: v for k, v in options.items() if v is not None}
        return SubmititPool(workers, nodes, folder, cluster, parameters, poll_s=poll_s, threads=threads)
    import torch

    from nas.search.workers.local import LocalPool
    from nas.search.workers.task import EvaluationContext

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if str(cfg.trainer.get("accelerator", "auto")) not in ("auto", "gpu", "cuda"):
        n_gpus = 0  # an explicit device (cpu, cuda:1): every worker uses it, no GPU of its own
    start = str(cfg.search.get("worker_start", "auto"))
    if start not in ("auto", "fork", "spawn"):
        raise SearchError(f"search.worker_start must be auto, fork or spawn, got {start!r}")
    if start == "auto":
        start = "spawn" if torch.cuda.is_available() else "fork"
    if n_gpus == 0:
        torch.set_num_threads(1)  # the search's own process too: the cores are the workers'
    if start == "fork":
        import nas.training  # noqa: F401 - imported once here, not in every worker

        source = EvaluationContext(space, datamodule, trainer_cfg)
    else:
        source = context_nodes(cfg)
    from nas.device import hydra_job_number

    per_gpu = int(cfg.search.get("workers_per_gpu", 1))
    return LocalPool(workers, source, n_gpus=n_gpus, threads=1, start_method=start, workers_per_gpu=per_gpu,
                     first_gpu=first_gpu(hydra_job_number(), workers, per_gpu))
