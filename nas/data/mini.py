"""Embedded default datasets built from scikit-learn's bundled handwritten digits.

`mini_addnist` and `mini_multnist` are small stand-ins for AddNIST and MultNIST that need no
download (`sklearn.datasets.load_digits`: 1,797 grey 8×8 images of the digits 0-9, values 0-16).
They let `python search.py` run end to end on a CPU in minutes and give the tests a real,
learnable task.

Construction (fully determined by `build_seed`):
1. The 1,797 images are split per digit class into three *disjoint* pools, 60 / 20 / 20 %
   (train / valid / test), so no image is ever seen in two splits.
2. Each sample is a triple of digit images drawn from the split's own pool, stacked as three
   channels (like AddNIST/MultNIST, whose channels are three MNIST digits).
3. Labels are class-balanced: the label is drawn first (a shuffled, evenly filled list), then a
   digit triple uniformly among those with that label, then an image of each digit uniformly
   from the pool.
   - mini_addnist: label = a + b + c, only triples with a + b + c ≤ 19 are used → 20 classes
     (0-19), matching AddNIST's 20 classes. Chance = 5 %.
   - mini_multnist: label = (a · b · c) mod 10 → 10 classes. Chance = 10 %.
4. Pixels are scaled to [0, 1], upsampled bilinearly to `image_size` (16 by default) and
   normalised with the train split's per-channel mean/std, as the Unseen-NAS data is.

Why 16×16 and not the native 8×8: einspace offers `im2col` with kernels 1, 3, 4, 8 and 16, and
drops those larger than the image. At 16×16 every option of the grammar stays valid, as on the
real 28×28 data, so a search on the default dataset samples from the same option set; the
resnet-like seeds still have room for their stride-2 stages (16→8→4→2→1) and the ViT seed's
4×4 patches give 16 tokens instead of 4. The price is 4× the pixels of 8×8, which at the
default sizes still trains a small conv net in well under a second per epoch on one core.

Default sizes: 4,096 train / 1,024 valid / 1,024 test triples (16 / 4 / 4 batches of 256).

Measured on one CPU core (torch 2.14, OMP_NUM_THREADS=1, a shared 2-core machine, so ±20 %):
a small conv net (3×3 convs 32 → 64 s2 → 64 s2, BatchNorm, ReLU, global pool, linear) with the
paper's SGD settings trains one epoch in ≈ 1.0-1.2 s at 16×16 (≈ 0.3 s with `image_size=8`,
≈ 0.5-0.75 s at half the width); iterating the loader alone costs ≈ 8 ms per epoch. After 8
epochs of the paper's cosine schedule it reaches ≈ 21 % validation accuracy on mini_addnist
(chance 5 %) and ≈ 31 % on mini_multnist (chance 10 %): hard enough to separate architectures.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nas.data.base import SPLITS, InMemoryDataModule

TASKS = {"add": 20, "mult": 10}
NAME_TO_TASK = {"mini_addnist": "add", "mini_multnist": "mult"}
DEFAULT_SIZES = {"train": 4096, "valid": 1024, "test": 1024}
DEFAULT_POOL_FRACTIONS = (0.6, 0.2, 0.2)


def label_of(task: str, a: int | np.ndarray, b: int | np.ndarray, c: int | np.ndarray):
    """The label rule: a+b+c (add, valid for sums ≤ 19) or (a·b·c) mod 10 (mult)."""
    if task == "add":
        return a + b + c
    if task == "mult":
        return (a * b * c) % 10
    raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")


def digit_triples_by_label(task: str) -> list[np.ndarray]:
    """For each label, the (k, 3) array of digit triples that produce it (add: sum ≤ 19 only)."""
    groups: list[list[tuple[int, int, int]]] = [[] for _ in range(TASKS[task])]
    for a, b, c in itertools.product(range(10), repeat=3):
        label = int(label_of(task, a, b, c))
        if label < TASKS[task]:
            groups[label].append((a, b, c))
    return [np.array(g, dtype=np.int64) for g in groups]


@dataclass
class MiniDigits:
    """A built mini dataset: tensors plus the provenance the tests check."""

    task: str
    x: dict[str, torch.Tensor]  # split -> float32 (N, 3, S, S), normalised
    y: dict[str, torch.Tensor]  # split -> int64 (N,)
    digits: dict[str, np.ndarray]  # split -> (N, 3) digit value of each channel
    source_indices: dict[str, np.ndarray]  # split -> (N, 3) index into load_digits() images
    pools: dict[str, np.ndarray]  # split -> sorted image indices the split may use
    mean: torch.Tensor  # (3,) train-split channel mean before normalisation
    std: torch.Tensor  # (3,)


def split_pools(
    targets: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Disjoint image pools, stratified by digit class, in the given proportions."""
    if len(fractions) != 3 or min(fractions) <= 0:
        raise ValueError(f"pool_fractions must be three positive numbers, got {list(fractions)}")
    total = float(sum(fractions))
    pools: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(targets == d))
        n_train = int(round(len(idx) * fractions[0] / total))
        n_valid = int(round(len(idx) * fractions[1] / total))
        pools["train"].append(idx[:n_train])
        pools["valid"].append(idx[n_train : n_train + n_valid])
        pools["test"].append(idx[n_train + n_valid :])
    return {s: np.sort(np.concatenate(p)) for s, p in pools.items()}


def _compose(
    task: str,
    n: int,
    pool: np.ndarray,
    targets: np.ndarray,
    triples: list[np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n class-balanced samples from one pool: (labels, digit triples, image indices)."""
    k = len(triples)
    labels = rng.permutation(np.arange(n) % k)
    digits = np.empty((n, 3), dtype=np.int64)
    for label in range(k):
        rows = np.flatnonzero(labels == label)
        digits[rows] = triples[label][rng.integers(len(triples[label]), size=len(rows))]
    by_digit = [pool[targets[pool] == d] for d in range(10)]
    source = np.empty((n, 3), dtype=np.int64)
    for pos in range(3):
        for d in range(10):
            rows = np.flatnonzero(digits[:, pos] == d)
            if len(rows):
                source[rows, pos] = by_digit[d][rng.integers(len(by_digit[d]), size=len(rows))]
    return labels.astype(np.int64), digits, source


def build_mini_digits(
    task: str = "add",
    image_size: int = 16,
    sizes: dict[str, int] | None = None,
    pool_fractions: Sequence[float] = DEFAULT_POOL_FRACTIONS,
    build_seed: int = 0,
) -> MiniDigits:
    """Build a mini dataset deterministically from `sklearn.datasets.load_digits`."""
    from sklearn.datasets import load_digits

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    digits_ds = load_digits()
    images = np.asarray(digits_ds.images, dtype=np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    targets = np.asarray(digits_ds.target, dtype=np.int64)
    rng = np.random.default_rng(int(build_seed))
    pools = split_pools(targets, pool_fractions, rng)
    triples = digit_triples_by_label(task)

    x, y, digits, sources = {}, {}, {}, {}
    for split in SPLITS:
        labels, dig, src = _compose(task, int(sizes[split]), pools[split], targets, triples, rng)
        xs = torch.from_numpy(images[src])  # (N, 3, 8, 8)
        if image_size != xs.shape[-1]:
            xs = F.interpolate(xs, size=(image_size, image_size), mode="bilinear", align_corners=False)
        x[split], y[split] = xs, torch.from_numpy(labels)
        digits[split], sources[split] = dig, src

    flat = x["train"].transpose(0, 1).reshape(3, -1).double()
    mean, std = flat.mean(1).float(), flat.std(1).float()
    for split in SPLITS:
        x[split] = ((x[split] - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)).contiguous()
    return MiniDigits(task, x, y, digits, sources, pools, mean, std)


class MiniDigitsDataModule(InMemoryDataModule):
    """`mini_addnist` / `mini_multnist`: see the module docstring for how they are built.

    Args:
        name: `mini_addnist` (task add, 20 classes) or `mini_multnist` (task mult, 10 classes).
        input_shape, num_classes: checked against what the build produces.
        task: override the task implied by the name (`add` or `mult`).
        image_size: side of the square images (16; 8 = the native resolution).
        n_train, n_valid, n_test: samples per split.
        pool_fractions: train/valid/test shares of the 1,797 source images.
        build_seed: seed of the dataset construction (fixed, independent of `seed`).
        Other args: see `InMemoryDataModule`.
    """

    def __init__(
        self,
        name: str = "mini_addnist",
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        task: str | None = None,
        image_size: int = 16,
        n_train: int = DEFAULT_SIZES["train"],
        n_valid: int = DEFAULT_SIZES["valid"],
        n_test: int = DEFAULT_SIZES["test"],
        pool_fractions: Sequence[float] = DEFAULT_POOL_FRACTIONS,
        build_seed: int = 0,
        batch_size: int = 256,
        on_device: bool = True,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        task = task or NAME_TO_TASK.get(str(name))
        if task not in TASKS:
            raise ValueError(f"{name}: cannot tell the task; pass task='add' or task='mult'")
        shape = (3, int(image_size), int(image_size))
        if input_shape is not None and tuple(int(v) for v in input_shape) != shape:
            raise ValueError(f"{name}: input_shape={list(input_shape)} but image_size gives {list(shape)}")
        if num_classes is not None and int(num_classes) != TASKS[task]:
            raise ValueError(f"{name}: num_classes={num_classes} but task {task!r} has {TASKS[task]}")
        super().__init__(name, shape, TASKS[task], batch_size, on_device, seed, device)
        self.task = task
        self.image_size = int(image_size)
        self.sizes = {"train": int(n_train), "valid": int(n_valid), "test": int(n_test)}
        self.pool_fractions = tuple(float(f) for f in pool_fractions)
        self.build_seed = int(build_seed)
        self.built: MiniDigits | None = None

    def _load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.built = build_mini_digits(
            self.task, self.image_size, self.sizes, self.pool_fractions, self.build_seed
        )
        return {s: (self.built.x[s], self.built.y[s]) for s in SPLITS}
