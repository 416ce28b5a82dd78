"""search.py's task: run (or resume) one search in the Hydra run dir, with clean user errors."""
from __future__ import annotations

import sys

from omegaconf import DictConfig

from nas.data import DatasetError
from nas.hydra_utils import hydra_run_dir, single_run
from nas.search.archive import ArchiveError
from nas.search.checkpoint import CheckpointError
from nas.search.runner import SearchError, SearchRunner


def main(cfg: DictConfig) -> float | None:
    """Returns the best validation accuracy (for sweepers); exits 1 with a message on errors."""
    run_dir = hydra_run_dir()
    try:
        result = SearchRunner(cfg, run_dir).run()
    except (SearchError, CheckpointError, ArchiveError, DatasetError) as err:
        print(f"search.py: error: {err}", file=sys.stderr, flush=True)
        if single_run():
            sys.exit(1)
        raise
    best = result["best"]
    counts = result["candidates"]
    shown = "-" if best is None else f"{best['val_acc']:.4f}"
    print(f"best val_acc={shown} after {result['iterations']} iterations "
          f"({counts['failed']} failed: {counts['failed_by_status']}) in {result['wall_seconds']:.0f}s "
          f"-> {run_dir}/result.json", flush=True)
    return None if best is None else best["val_acc"]
