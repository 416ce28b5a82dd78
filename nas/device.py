"""Devices and threads of a job: the one rule that turns a device request into a ``torch.device``,
and the resources each job of a parallel sweep gets.

``auto`` is the job's GPU when one is visible, else the CPU; ``gpu`` and ``cuda`` are the job's
GPU and fail without one; anything else is read by ``torch.device`` (``cpu``, ``cuda:1``, ...),
so an explicit index always wins. The GPU is always returned with its index (``cuda:0``, never a
bare ``cuda``), so the device the datamodule holds its tensors on compares equal to the one a
candidate is trained on.

**The job's GPU.** Hydra numbers the jobs of a multirun 0, 1, 2, ...; job ``i`` gets GPU
``i mod n`` of the ``n`` visible ones (:func:`gpu_for_job`), so the jobs of a local parallel sweep
(``hydra/launcher=joblib``) spread over the GPUs instead of all landing on GPU 0. A single run is
job 0. Outside Hydra (tests, notebooks) the current CUDA device is used, as before. Resolving the
job's GPU also makes it torch's current device, so code that asks for a bare ``cuda`` (the
language-model surrogate) lands on the same GPU. The mapping is by job number, not by free GPU:
with more jobs than GPUs and jobs of very different lengths, two running jobs can share a GPU
while another idles (keep ``n_jobs`` equal to the GPU count, or pin one with
``trainer.accelerator=cuda:<k>``). Under SLURM each job sees only its own GPUs
(``CUDA_VISIBLE_DEVICES``), so with ``gpus_per_node: 1`` every job uses its one GPU.

**Threads.** :class:`JobResources` is a Hydra callback (``conf/hydra/callbacks/default.yaml``)
that, at the start of every job a parallel launcher runs (joblib with ``n_jobs`` other than 1,
submitit), limits the job to one thread (or the SLURM ``cpus_per_task``): OpenMP/MKL/OpenBLAS
through the environment and threadpoolctl, torch through ``torch.set_num_threads``. Two jobs
with two threads each on two cores run 5-7x slower than with one (``offline_env.md``). The
predictors already use ``n_jobs: 1`` (``conf/surrogate/*.yaml``); the language models follow
torch's setting.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions: the callback below is built when Hydra starts, and a
# bad command-line value must still be reported before the seconds that importing torch takes.
log = logging.getLogger(__name__)

# The thread-count variables of the usual native libraries (read when each one loads).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def gpu_for_job(job_num: int, n_gpus: int) -> int | None:
    """The GPU index job ``job_num`` of a sweep uses with ``n_gpus`` visible: ``job_num mod
    n_gpus``; ``None`` without GPUs. Pure: the whole mapping, testable without a GPU."""
    if n_gpus <= 0:
        return None
    if job_num < 0:
        raise ValueError(f"job number {job_num} is negative")
    return int(job_num) % int(n_gpus)


def hydra_job_number() -> int | None:
    """The Hydra job number: ``hydra.job.num`` in a multirun, 0 in a single run, ``None``
    outside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        from omegaconf import OmegaConf

        num = OmegaConf.select(HydraConfig.get(), "job.num", default=None)
    except Exception:  # noqa: BLE001 - no Hydra job: behave as outside Hydra
        return None
    return 0 if num is None else int(num)


def job_gpu(n_gpus: int | None = None) -> int | None:
    """This job's GPU index (:func:`gpu_for_job` of the Hydra job number; the current CUDA device
    outside Hydra), ``None`` without a GPU."""
    import torch

    if n_gpus is None:
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus <= 0:
        return None
    job = hydra_job_number()
    return torch.cuda.current_device() if job is None else gpu_for_job(job, n_gpus)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``device`` (a Lightning accelerator name, a device string or a ``torch.device``) resolved."""
    import torch

    name = str(device).lower()
    if name in ("auto", "gpu", "cuda"):
        if torch.cuda.is_available():
            index = job_gpu()
            if index != torch.cuda.current_device():
                torch.cuda.set_device(index)  # a bare "cuda" elsewhere then means the job's GPU
            return torch.device("cuda", index)
        if name != "auto":
            raise RuntimeError(f"device {name!r} requested but CUDA is not available")
        return torch.device("cpu")
    return torch.device(name)


# ------------------------------------------------------------------------------ threads
def launcher_threads(launcher: Any) -> int | None:
    """Threads per job for a ``hydra.launcher`` config: 1 for joblib running jobs in parallel
    (``n_jobs`` other than 1), ``cpus_per_task`` (or 1) for submitit; ``None`` (leave the
    libraries' defaults) for the basic launcher, which runs one job at a time, and unknown ones."""
    if launcher is None:
        return None
    target = str(launcher.get("_target_", "") or "")
    if "joblib" in target.lower():
        n_jobs = launcher.get("n_jobs", -1)
        return None if n_jobs is not None and int(n_jobs) == 1 else 1
    if "submitit" in target.lower():
        cpus = launcher.get("cpus_per_task")
        return max(1, int(cpus)) if cpus else 1
    return None


def limit_threads(n: int) -> None:
    """Run this process on ``n`` threads: the libraries loaded later (environment), those already
    loaded (threadpoolctl) and torch's intra-op pool."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    import torch

    torch.set_num_threads(n)


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra-core is a dependency
    _HydraCallback = object  # type: ignore[assignment,misc]


class JobResources(_HydraCallback):
    """Hydra callback: each job's threads and GPU (see the module docstring), and a log line
    naming them. Under a parallel launcher the job's GPU becomes torch's current device before
    the task starts, so code that never calls :func:`resolve_device` lands there too.

    ``threads``: ``auto`` (1 per job under a parallel launcher: :func:`launcher_threads`), a
    number (every job, the basic launcher and single runs included), or ``null`` (never touch).
    Set it with ``hydra.callbacks.job_resources.threads=<n>``.
    """

    def __init__(self, threads: int | str | None = "auto") -> None:
        self.threads = threads

    def job_threads(self, config: Any) -> int | None:
        if self.threads in (None, "null", "None"):
            return None
        if str(self.threads).lower() == "auto":
            from omegaconf import OmegaConf

            return launcher_threads(OmegaConf.select(config, "hydra.launcher"))
        return max(1, int(self.threads))

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        threads = self.job_threads(config)
        if threads is None:
            return  # a single run or a sequential sweep: torch keeps its defaults
        limit_threads(threads)
        import torch

        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        gpu = job_gpu(n_gpus)
        if gpu is not None and gpu != torch.cuda.current_device():
            torch.cuda.set_device(gpu)  # before anything allocates: a bare "cuda" is this job's GPU
        log.info("job %s: %d thread(s), %s", hydra_job_number(), torch.get_num_threads(),
                 "CPU" if gpu is None else f"GPU cuda:{gpu} of {n_gpus}")
