"""Tiny fake datasets on disk in the official layouts, for tests.

The arrays are random, so nothing can be learnt from them; they exist to exercise the loading,
checking and preprocessing code (and anything downstream that needs "an addnist") without the
real files. Used by tests/test_data_*.py and tests/test_limits.py.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from nas.data.unseen import UNSEEN_NAS_SPECS

SMALL_SPLITS = {"train": 40, "valid": 12, "test": 10}


def write_unseen_npy(
    data_dir: str | Path,
    name: str,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    loc: float = 0.5,
    scale: float = 2.0,
) -> Path:
    """Write `<data_dir>/<name>/{train,valid,test}_{x,y}.npy` with the official shapes/dtypes.

    x is float32 normal(loc + channel index, scale) (channels differ so per-channel statistics
    matter); valid and test are shifted by +1 and +2 so that "statistics from train only" is
    testable. y is int64 uniform over the classes. Returns the dataset folder.
    """
    spec = UNSEEN_NAS_SPECS[name]
    sizes = {**SMALL_SPLITS, **(sizes or {})}
    folder = Path(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    c = spec.raw_shape[0]
    for shift, split in enumerate(("train", "valid", "test")):
        n = sizes[split]
        centre = (loc + shift + np.arange(c, dtype=np.float64)).reshape(1, c, 1, 1)
        x = (centre + scale * rng.standard_normal((n, *spec.raw_shape))).astype(np.float32)
        y = rng.integers(0, spec.num_classes, size=n).astype(np.int64)
        np.save(folder / f"{split}_x.npy", x)
        np.save(folder / f"{split}_y.npy", y)
    return folder


def write_fake_cifar10(data_dir: str | Path, n_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """Write torchvision's CIFAR-10 python layout under `<data_dir>/cifar10/` with random images.

    torchvision verifies md5 sums of the real files, which these cannot match: a caller must
    also make `torchvision.datasets.cifar.check_integrity` return True (tests monkeypatch it).
    """
    rng = np.random.default_rng(seed)
    folder = Path(data_dir) / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for fname in names:
        n = n_test if fname == "test_batch" else n_per_batch
        entry = {
            "data": rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8),
            "labels": rng.integers(0, 10, size=n).tolist(),
        }
        with open(folder / fname, "wb") as f:
            pickle.dump(entry, f)
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck"]}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    return folder
