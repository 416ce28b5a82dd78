"""evaluate.py's tasks. ``sweep``: aggregate the searches under ``sweep_dir``."""
from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nas.logging import create_logger
from nas.search.aggregate import aggregate_sweep, to_markdown

TASKS = ("sweep",)


def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    if cfg.task not in TASKS:
        sys.exit(f"evaluate.py: error: unknown task {cfg.task!r}; available: {', '.join(TASKS)}")
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        table, figures = aggregate_sweep(cfg.sweep_dir, out_dir)
    except FileNotFoundError as err:
        sys.exit(f"evaluate.py: error: {err}")
    logger = create_logger(cfg.get("logger"), run_dir=str(out_dir), job_type="evaluate", name=f"sweep-{Path(cfg.sweep_dir).name}",
                           config=OmegaConf.to_container(cfg, resolve=True))
    try:
        logger.table("sweep_summary", table)
        logger.summary({"runs": int(table["seeds"].sum()), "arms": len(table)})
    finally:
        logger.finish()
    print(to_markdown(table), end="")
    print(f"-> {out_dir} ({len(figures)} figure(s))")
