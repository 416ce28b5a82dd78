"""Dataset registry: the names are the files in `conf/dataset/`, so config and code agree.

`list_datasets()` lists them; `create_datamodule(name, **overrides)` builds one from its yaml
outside Hydra (resolving `${paths.data_dir}` from `conf/paths/default.yaml`), which is what a
notebook or a test wants. Inside Hydra use `hydra.utils.instantiate(cfg.dataset)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

# Names known to the code, used when the package runs without the repository's conf/ tree.
_BUILTIN_NAMES = (
    "addnist", "chesseract", "cifar10", "cifartile", "geoclassing", "gutenberg", "isabella",
    "language", "mini_addnist", "mini_multnist", "multnist",
)


def list_datasets() -> list[str]:
    """Sorted names of the available datasets (`conf/dataset/*.yaml`)."""
    folder = CONF_DIR / "dataset"
    if folder.is_dir():
        return sorted(p.stem for p in folder.glob("*.yaml"))
    return sorted(_BUILTIN_NAMES)


def dataset_config(name: str, **overrides: Any):
    """The resolved `conf/dataset/<name>.yaml` as a DictConfig, with `overrides` applied."""
    from omegaconf import OmegaConf

    path = CONF_DIR / "dataset" / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")
    paths_file = CONF_DIR / "paths" / "default.yaml"
    paths = OmegaConf.load(paths_file) if paths_file.is_file() else {"data_dir": "data"}
    root = OmegaConf.create({"paths": paths, "dataset": OmegaConf.load(path)})
    root.dataset = OmegaConf.merge(root.dataset, overrides)
    OmegaConf.resolve(root)
    return root.dataset


def create_datamodule(name: str, **overrides: Any):
    """Instantiate the datamodule of `conf/dataset/<name>.yaml` (not yet set up)."""
    from hydra.utils import instantiate

    return instantiate(dataset_config(name, **overrides))
