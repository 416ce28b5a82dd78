"""search.py's task: run (or resume) one search in the Hydra run dir, with clean user errors."""
from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from nas.data import DatasetError
from nas.search.archive import ArchiveError
from nas.search.checkpoint import CheckpointError
from nas.search.runner import SearchError, SearchRunner


def run_dir_from_hydra() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def main(cfg: DictConfig) -> float | None:
    """Returns the best validation accuracy (for sweepers); exits 1 with a message on errors."""
    run_dir = run_dir_from_hydra()
    try:
        result = SearchRunner(cfg, run_dir).run()
    except (SearchError, CheckpointError, ArchiveError, DatasetError) as err:
        print(f"search.py: error: {err}", file=sys.stderr, flush=True)
        if _single_run():
            sys.exit(1)
        raise
    best = result["best"]
    counts = result["candidates"]
    shown = "-" if best is None else f"{best['val_acc']:.4f}"
    print(f"best val_acc={shown} after {result['iterations']} iterations "
          f"({counts['failed']} failed: {counts['failed_by_status']}) in {result['wall_seconds']:.0f}s "
          f"-> {run_dir}/result.json", flush=True)
    return None if best is None else best["val_acc"]


def _single_run() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.RUN
    except ValueError:
        return True
