"""Small helpers the entry points share about the Hydra job they run in."""
from __future__ import annotations

from pathlib import Path


def hydra_run_dir() -> Path:
    """The current job's output directory (run dir, or the sweep job's subdir)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def single_run() -> bool:
    """True for ``python x.py ...`` (exit codes matter), False inside a multirun sweep, where a
    failing job must not end the whole sweep. Outside Hydra: behave like a single run."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.RUN
    except ValueError:
        return True
