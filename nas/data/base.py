"""The shared datamodule: three splits held as tensors, on the GPU when there is one.

Every dataset in this package is small enough to live in memory, so a datamodule here is just
"load three (x, y) tensor pairs once, then hand out `InMemoryLoader`s over them". Subclasses only
implement `_load_splits` (and, when they store raw data such as uint8 images, the per-batch
`_train_transform` / `_eval_transform`). The same datamodule object is meant to be built once per
worker process and reused by every candidate (reference/ecosystem.md §4.3).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch

from nas.data.errors import DatasetError
from nas.data.loader import InMemoryLoader
from nas.device import resolve_device

SPLITS = ("train", "valid", "test")


class InMemoryDataModule(L.LightningDataModule):
    """Base class: train / valid / test tensors in memory, seeded shuffling, no workers.

    Args:
        name: dataset name (the `conf/dataset/<name>.yaml` file name).
        input_shape: (C, H, W) of one sample *as fed to the network*, after all transforms.
        num_classes: number of labels; labels are checked to lie in [0, num_classes).
        batch_size: samples per batch for every loader (256 in the paper).
        on_device: keep the tensors on the GPU when one is visible (the paper's `load_in_gpu`).
        seed: seed of the shuffle (and augmentation) generator. Each `train_dataloader()` call
            returns a fresh loader seeded with it, so a candidate trained by a fresh Trainer sees
            the same batch order whatever ran before it in the same process.
        device: explicit device (`nas.device.resolve_device`); overrides `on_device`.

    Batches are `(x float32 (N, C, H, W), y int64 (N,))` on `self.device`.
    """

    def __init__(
        self,
        name: str,
        input_shape: Sequence[int],
        num_classes: int,
        batch_size: int = 256,
        on_device: bool = True,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        self.name = str(name)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.num_classes = int(num_classes)
        self.batch_size = int(batch_size)
        self.on_device = bool(on_device)
        self.seed = int(seed)
        self._device = resolve_device(device if device is not None else "auto" if on_device else "cpu")
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._trainval: tuple[torch.Tensor, torch.Tensor] | None = None
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape must be [C, H, W], got {list(self.input_shape)}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")

    # ----------------------------------------------------------------- for subclasses
    def _load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Return {'train'|'valid'|'test': (x, y int64)} as CPU tensors (x in stored form)."""
        raise NotImplementedError

    def _train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-batch transform for training batches (default: none; data is stored ready)."""
        return x

    def _eval_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-batch transform for evaluation batches (default: none)."""
        return x

    # ----------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Nothing to download: every dataset is read from disk or built in memory."""

    def setup(self, stage: str | None = None) -> None:
        """Load all three splits once (idempotent), check them, move them to `self.device`."""
        if self._data is not None:
            return
        data = self._load_splits()
        self._check_splits(data)
        self._data = {k: (x.to(self._device), y.to(self._device)) for k, (x, y) in data.items()}

    def train_dataloader(self) -> InMemoryLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> InMemoryLoader:
        return self._loader("valid", train=False)

    def test_dataloader(self) -> InMemoryLoader:
        return self._loader("test", train=False)

    def trainval_dataloader(self) -> InMemoryLoader:
        """Train and valid concatenated, shuffled, drop_last: for the final retraining."""
        self.setup()
        if self._trainval is None:
            (xt, yt), (xv, yv) = self._data["train"], self._data["valid"]
            self._trainval = (torch.cat([xt, xv]), torch.cat([yt, yv]))
        x, y = self._trainval
        return InMemoryLoader(
            x, y, self.batch_size, shuffle=True, drop_last=True, seed=self.seed,
            transform=self._train_transform,
        )

    # ----------------------------------------------------------------- public helpers
    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: str | torch.device) -> InMemoryDataModule:
        """Move the (loaded or future) tensors to `device`; returns self."""
        self._device = resolve_device(device)
        if self._data is not None:
            self._data = {k: (x.to(self._device), y.to(self._device)) for k, (x, y) in self._data.items()}
        if self._trainval is not None:
            self._trainval = tuple(t.to(self._device) for t in self._trainval)
        return self

    def set_epoch_seed(self, seed: int) -> None:
        """Seed the shuffle order of every loader created from now on."""
        self.seed = int(seed)

    def example_batch(self, n: int = 256, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """A deterministic batch of `n` samples (fewer if the split is smaller).

        The samples are drawn with a generator seeded by `self.seed` and go through the *eval*
        transform (no augmentation), so forward-time checks and zero-cost proxies see the same
        batch every time for the same seed.
        """
        self.setup()
        x, y = self._data[split]
        generator = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(len(y), generator=generator)[: min(int(n), len(y))].to(x.device)
        return self._eval_transform(x[idx], generator), y[idx]

    def split_sizes(self) -> dict[str, int]:
        """Number of samples per split (loads the data)."""
        self.setup()
        return {k: len(y) for k, (_, y) in self._data.items()}

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored (x, y) of a split, before any per-batch transform."""
        self.setup()
        return self._data[split]

    def __repr__(self) -> str:
        sizes = "not loaded" if self._data is None else self.split_sizes()
        return (
            f"{type(self).__name__}(name={self.name!r}, input_shape={list(self.input_shape)}, "
            f"num_classes={self.num_classes}, batch_size={self.batch_size}, "
            f"device={self._device}, splits={sizes})"
        )

    __str__ = __repr__  # LightningDataModule's __str__ expects torch DataLoaders

    # ----------------------------------------------------------------- internals
    def _loader(self, split: str, *, train: bool) -> InMemoryLoader:
        self.setup()
        x, y = self._data[split]
        return InMemoryLoader(
            x, y, self.batch_size, shuffle=train, drop_last=train, seed=self.seed,
            transform=self._train_transform if train else self._eval_transform,
        )

    def _check_splits(self, data: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Guard against a config that disagrees with the data (shape, classes, dtype)."""
        if set(data) != set(SPLITS):
            raise DatasetError(f"{self.name}: loader returned splits {sorted(data)}, expected {SPLITS}")
        probe = torch.Generator().manual_seed(0)
        for split, (x, y) in data.items():
            if len(x) == 0 or len(x) != len(y):
                raise DatasetError(
                    f"{self.name}/{split}: {len(x)} inputs and {len(y)} labels; "
                    "expected the same, non-zero number"
                )
            if y.dtype != torch.int64 or y.ndim != 1:
                raise DatasetError(f"{self.name}/{split}: labels must be int64 (N,), got {y.dtype} {tuple(y.shape)}")
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= self.num_classes:
                raise DatasetError(
                    f"{self.name}/{split}: labels span [{lo}, {hi}] but num_classes is "
                    f"{self.num_classes} (labels must lie in [0, {self.num_classes}))"
                )
            fed = self._eval_transform(x[:2], probe)
            if tuple(fed.shape[1:]) != self.input_shape or fed.dtype != torch.float32:
                raise DatasetError(
                    f"{self.name}/{split}: samples reach the network as {fed.dtype} "
                    f"{list(fed.shape[1:])}, but input_shape is {list(self.input_shape)} (float32)"
                )
