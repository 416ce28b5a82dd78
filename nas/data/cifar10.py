"""CIFAR-10 through torchvision's on-disk format, with a fixed seeded 40k/10k train/valid split.

Reads `<data_dir>/cifar10/cifar-10-batches-py/` with `torchvision.datasets.CIFAR10(...,
download=False)` (these machines have no internet); a missing or corrupted copy is a
`DatasetError` that says where the files go.

Split: the paper's code draws train and valid from the official 50,000 training images via index
files that were never published. Here valid = the first 10,000 entries of
`numpy.random.RandomState(split_seed).permutation(50000)` with `split_seed = 0`, train = the
remaining 40,000 (both sorted). `RandomState` is numpy's frozen legacy generator, whose stream is
guaranteed never to change, so the split is the same with every numpy/torch version. The split
depends only on `split_seed`, never on the run seed. The official test set is the test split.

Preprocessing, as in the paper's code:
- all splits: ToTensor (uint8 → [0, 1]) and Normalize(mean=(0.4914, 0.4822, 0.4465),
  std=(0.2023, 0.1994, 0.2010));
- train (and train+valid) also: RandomCrop(32, padding=4) and RandomHorizontalFlip.

Images are stored as uint8 (N, 3, 32, 32), 180 MB in all, on the device, and converted per batch
on the device. The crop pads the *normalised* batch with the normalised value of black,
(0 − mean) / std, which is exactly torchvision's order (pad the raw image with 0, then normalise).
The original kept CIFAR-10 on the CPU (`load_in_gpu: False`); with uint8 storage it fits on
any GPU, so `on_device` defaults to true here as everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from nas.data.augment import random_crop, random_hflip
from nas.data.base import InMemoryDataModule
from nas.data.errors import DatasetError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR10_FILES = (
    "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
    "test_batch", "batches.meta",
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
DEFAULT_SPLIT_SEED = 0
DEFAULT_VALID_SIZE = 10_000


def train_valid_split(
    n_total: int, n_valid: int, split_seed: int = DEFAULT_SPLIT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint sorted index tensors (train, valid) covering range(n_total), fixed by the seed."""
    if not 0 < n_valid < n_total:
        raise ValueError(f"need 0 < n_valid < n_total, got n_valid={n_valid}, n_total={n_total}")
    perm = torch.from_numpy(np.random.RandomState(int(split_seed)).permutation(n_total))
    return perm[n_valid:].sort().values, perm[:n_valid].sort().values


class CIFAR10DataModule(InMemoryDataModule):
    """CIFAR-10: 40k train / 10k valid (seeded split of the official train set) / 10k test.

    Args:
        data_dir: the data root; the files are read from `<data_dir>/cifar10/`.
        valid_size: images held out for validation (10,000; for a copy with fewer than 50,000
            training images, a fifth of them).
        split_seed: seed of the train/valid split (0), independent of `seed`.
        augment: random crop (padding 4) + horizontal flip on training batches.
        Other args: see `InMemoryDataModule`.
    """

    def __init__(
        self,
        name: str = "cifar10",
        data_dir: str | Path = "data",
        input_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        batch_size: int = 256,
        on_device: bool = True,
        seed: int = 0,
        device: str | torch.device | None = None,
        valid_size: int = DEFAULT_VALID_SIZE,
        split_seed: int = DEFAULT_SPLIT_SEED,
        augment: bool = True,
    ) -> None:
        if tuple(int(v) for v in input_shape) != (3, 32, 32) or int(num_classes) != 10:
            raise ValueError(
                f"CIFAR-10 is 3x32x32 with 10 classes; got input_shape={list(input_shape)}, "
                f"num_classes={num_classes}"
            )
        super().__init__(name, input_shape, num_classes, batch_size, on_device, seed, device)
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "cifar10"
        self.valid_size = int(valid_size)
        self.split_seed = int(split_seed)
        self.augment = bool(augment)
        self.train_indices: torch.Tensor | None = None
        self.valid_indices: torch.Tensor | None = None

    # ------------------------------------------------------------------ loading
    def _load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        x_all, y_all = self._read(train=True)
        x_test, y_test = self._read(train=False)
        n_valid = self.valid_size if len(y_all) > self.valid_size else len(y_all) // 5
        self.train_indices, self.valid_indices = train_valid_split(len(y_all), n_valid, self.split_seed)
        return {
            "train": (x_all[self.train_indices], y_all[self.train_indices]),
            "valid": (x_all[self.valid_indices], y_all[self.valid_indices]),
            "test": (x_test, y_test),
        }

    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, 3, 32, 32) images and int64 labels of the official train or test set."""
        from torchvision.datasets import CIFAR10

        try:
            ds = CIFAR10(root=str(self.root), train=train, download=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise DatasetError(self._missing_message(str(err))) from None
        except Exception as err:  # unreadable pickle, wrong array size, ...
            raise DatasetError(self._missing_message(f"{type(err).__name__}: {err}")) from None
        data = np.asarray(ds.data)
        if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
            raise DatasetError(
                f"CIFAR-10 in {self.root}: images are {data.dtype} {data.shape}; expected uint8 "
                "(N, 32, 32, 3). " + self._missing_message("malformed data")
            )
        x = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        return x, y

    def _missing_message(self, reason: str) -> str:
        folder = self.root / "cifar-10-batches-py"
        return (
            f"CIFAR-10 could not be read from {folder} ({reason}). "
            f"Expected the python version of CIFAR-10 there: {', '.join(CIFAR10_FILES)}. "
            f"Download {CIFAR10_URL} on a machine with internet and extract it into {self.root} "
            f"(so that {folder} exists), or run torchvision.datasets.CIFAR10('{self.root}', "
            "download=True) there. The data root is paths.data_dir (env NAS_DATA_DIR)."
        )

    # ------------------------------------------------------------------ transforms
    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(CIFAR10_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR10_STD, device=x.device).view(1, 3, 1, 1)
        return (x.float().div_(255.0) - mean) / std

    def _eval_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self._normalise(x)

    def _train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self._normalise(x)
        if not self.augment:
            return x
        black = -torch.tensor(CIFAR10_MEAN) / torch.tensor(CIFAR10_STD)
        x = random_crop(x, 4, generator, fill=black)
        return random_hflip(x, generator)
