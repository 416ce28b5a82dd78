"""A DataLoader replacement for tensors that already sit in memory (CPU or GPU).

Why not `torch.utils.data.DataLoader`: for a dataset held as two tensors, collating per-sample
tuples and (worse) forking workers costs more than training a small candidate (see
reference/ecosystem.md §4.1). Indexing the tensors with a permutation slices whole batches at
once, on whatever device the tensors live on. Lightning accepts any sized iterable as a loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class InMemoryLoader:
    """Iterate over `(x[idx], y[idx])` batches of two aligned tensors.

    Args:
        x, y: inputs (N, ...) and int64 labels (N,), on the same device.
        batch_size: samples per batch.
        shuffle: draw a fresh permutation at every `iter()` (i.e. every epoch) from a CPU
            `torch.Generator` seeded with `seed`. Two loaders built with the same seed therefore
            yield the same batches in the same order, epoch after epoch, on any device.
        drop_last: drop the final incomplete batch (used for training, as the paper's code does).
            A split smaller than one batch still yields its single partial batch, so a tiny
            dataset never trains for zero steps without anyone noticing.
        seed: seed of the shuffle generator (ignored when `shuffle` is false, but also seeds the
            generator handed to `transform`).
        transform: optional per-batch function `(x_batch, generator) -> x_batch` (e.g. float
            conversion, normalisation, augmentation), applied on the tensors' device.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        transform: BatchTransform | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.generator = torch.Generator().manual_seed(int(seed))

    @property
    def num_samples(self) -> int:
        return len(self.y)

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        if self.drop_last and n >= b:
            return n // b
        return -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_samples
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        if order is not None:
            order = order.to(self.x.device)
        for i in range(len(self)):
            start, stop = i * self.batch_size, min((i + 1) * self.batch_size, n)
            if order is None:
                xb, yb = self.x[start:stop], self.y[start:stop]
            else:
                idx = order[start:stop]
                xb, yb = self.x[idx], self.y[idx]
            if self.transform is not None:
                xb = self.transform(xb, self.generator)
            yield xb, yb

    def __repr__(self) -> str:
        return (
            f"InMemoryLoader(n={self.num_samples}, batch_size={self.batch_size}, "
            f"batches={len(self)}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
            f"device={self.x.device})"
        )
