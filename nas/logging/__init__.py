"""Run logging shared by train.py, search.py and evaluate.py (see :mod:`nas.logging.loggers`).

Variants, chosen by ``conf/logger/<name>.yaml`` (``_target_`` + ``_partial_: true``; the entry point
fills in the run dir, job type, name and config):

- ``wandb`` (default): a W&B run, offline unless configured otherwise, plus everything on disk;
- ``csv``: on disk only (``metrics.jsonl``/``metrics.csv``, ``summary.json``, ``tables/*.csv``);
- ``none``: nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.logging.loggers import (
    LOGGER_OUTPUTS,
    WANDB_RUN_ID_FILE,
    DiskLogger,
    NullLogger,
    RunLogger,
    atomic_write_text,
    merge_rows_by_step,
    to_jsonable,
)
from nas.logging.wandb_logger import WandbRunLogger

__all__ = [
    "RunLogger",
    "NullLogger",
    "DiskLogger",
    "WandbRunLogger",
    "create_logger",
    "atomic_write_text",
    "to_jsonable",
    "merge_rows_by_step",
    "LOGGER_OUTPUTS",
    "WANDB_RUN_ID_FILE",
]


def create_logger(cfg: Any = None, **runtime: Any) -> RunLogger:
    """Build a logger from a ``conf/logger`` node (or ``None`` → :class:`NullLogger`).

    ``runtime`` holds what only the entry point knows: ``run_dir``, ``job_type``, ``name``,
    ``config`` (the resolved job config), and optionally ``group``/``tags``, which are defaults:
    a non-empty ``group``/``tags`` in the logger config wins. ``None`` values are ignored.
    """
    if cfg is None:
        return NullLogger(**runtime)
    import hydra.utils
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(cfg, Mapping), f"logger config must be a mapping, got {type(cfg).__name__}"
    cfg = dict(cfg)
    cfg.pop("_partial_", None)
    runtime = {k: v for k, v in runtime.items() if v is not None}
    for key in ("group", "tags"):
        if cfg.get(key) not in (None, "", []):
            runtime.pop(key, None)  # an explicit config value (e.g. logger.group=my_sweep) wins
    # Not hydra.utils.instantiate(cfg, **runtime): it would recursively instantiate every
    # `_target_` inside `config` (the job's own config holds dataset/space targets).
    cls = hydra.utils.get_class(cfg.pop("_target_"))
    return cls(**{**cfg, **runtime})
