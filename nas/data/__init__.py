"""Datasets as LightningDataModules holding tensors in memory (on the GPU when there is one).

- `UnseenNASDataModule`: addnist, multnist, language, cifartile, gutenberg, isabella,
  geoclassing, chesseract from `<data_dir>/<name>/{train,valid,test}_{x,y}.npy`.
- `CIFAR10DataModule`: torchvision's CIFAR-10 files, seeded 40k/10k split, crop+flip.
- `MiniDigitsDataModule`: `mini_addnist` (the default everywhere) and `mini_multnist`, built
  from scikit-learn's bundled digits; no download.

All of them hand out `InMemoryLoader`s (no workers) of `(x float32 NCHW, y int64)` batches and
raise `DatasetError` with a readable message when files are missing or malformed.
"""

from nas.data.base import InMemoryDataModule, resolve_device
from nas.data.cifar10 import CIFAR10DataModule, train_valid_split
from nas.data.errors import DatasetError
from nas.data.loader import InMemoryLoader
from nas.data.mini import MiniDigitsDataModule, build_mini_digits
from nas.data.registry import create_datamodule, dataset_config, list_datasets
from nas.data.unseen import UNSEEN_NAS_SPECS, UnseenNASDataModule

__all__ = [
    "CIFAR10DataModule",
    "DatasetError",
    "InMemoryDataModule",
    "InMemoryLoader",
    "MiniDigitsDataModule",
    "UNSEEN_NAS_SPECS",
    "UnseenNASDataModule",
    "build_mini_digits",
    "create_datamodule",
    "dataset_config",
    "list_datasets",
    "resolve_device",
    "train_valid_split",
]
