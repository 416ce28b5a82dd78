"""The eight Unseen-NAS datasets (Geada et al. 2024), read from the official .npy layout.

Layout (as distributed, and as the paper's code reads it)::

    <data_dir>/<name>/train_x.npy  float32 (N, C, H, W)     train_y.npy  int (N,)
                      valid_x.npy                            valid_y.npy
                      test_x.npy                             test_y.npy

Preprocessing follows the paper's code (reference/seed_system.md §5): per-channel mean and std
over dims (0, 2, 3) of the *train* split, applied to all three splits; for chesseract the
normalised 12×8×8 boards are then zero-padded by 5 on each side to 12×18×18 (Normalize, then
Pad with fill 0). No augmentation. The transform runs once, eagerly, at `setup()`.

The std is the unbiased one (torch's default); with ≥ 40,000 samples × H × W values per channel
the difference from the biased estimate is below 1e-6 relative. A channel whose train std is 0
is divided by 1 instead (the original would produce inf/NaN).

Files are opened with `allow_pickle=False`: the official arrays are plain numeric arrays, and
no file a user downloads is unpickled here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nas.data.base import SPLITS, InMemoryDataModule
from nas.data.errors import DatasetError

UNSEEN_NAS_SOURCE = (
    "The Unseen-NAS datasets (AddNIST, MultNIST, Language, CIFARTile, Gutenberg, Isabella, "
    "GeoClassing, Chesseract) come from https://github.com/Towers-D/NAS-Unseen-Datasets "
    "(files hosted at data.ncl.ac.uk); the einspace README "
    "(https://github.com/linusericsson/einspace) describes the same layout for them and for the "
    "NAS-Bench-360 tasks."
)
NPY_MAGIC = b"\x93NUMPY"  # the first six bytes of every file numpy.save writes


@dataclass(frozen=True)
class UnseenSpec:
    """What the official files of one dataset contain."""

    raw_shape: tuple[int, int, int]  # (C, H, W) stored in the .npy files
    num_classes: int
    pad: int = 0  # zero padding added on each side after normalisation
    # Split sizes reported in the einspace paper (App. B.2); informative only, not enforced.
    paper_split_sizes: tuple[int, int, int] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.raw_shape
        return (c, h + 2 * self.pad, w + 2 * self.pad)


UNSEEN_NAS_SPECS: dict[str, UnseenSpec] = {
    "addnist": UnseenSpec((3, 28, 28), 20, 0, (45_000, 15_000, 10_000)),
    "multnist": UnseenSpec((3, 28, 28), 10, 0, (50_000, 10_000, 10_000)),
    "language": UnseenSpec((1, 24, 24), 10, 0, (50_000, 10_000, 10_000)),
    "cifartile": UnseenSpec((3, 64, 64), 4, 0, (45_000, 15_000, 10_000)),
    "gutenberg": UnseenSpec((1, 27, 18), 6, 0, (45_000, 15_000, 6_000)),
    "isabella": UnseenSpec((1, 64, 128), 4, 0, (50_000, 10_000, 10_000)),
    "geoclassing": UnseenSpec((3, 64, 64), 10, 0, (43_821, 8_758, 8_751)),
    "chesseract": UnseenSpec((12, 8, 8), 3, 5, (49_998, 9_999, 9_999)),
}

_X_KINDS = "fiu"  # float, signed int, unsigned int
_STATS_CHUNK = 4096  # samples per chunk when computing channel statistics


def channel_stats(x: np.ndarray, chunk: int = _STATS_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and unbiased std over dims (0, 2, 3), accumulated in float64 chunks.

    Chunking keeps memory flat for the large datasets (geoclassing train is 2 GB in float32),
    and float64 sums keep the result exact to float32 precision.
    """
    c = x.shape[1]
    total = np.zeros(c, dtype=np.float64)
    for i in range(0, len(x), chunk):
        total += np.asarray(x[i : i + chunk], dtype=np.float64).sum(axis=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    sq = np.zeros(c, dtype=np.float64)
    for i in range(0, len(x), chunk):
        block = np.asarray(x[i : i + chunk], dtype=np.float64) - mean[None, :, None, None]
        sq += (block * block).sum(axis=(0, 2, 3))
    std = np.sqrt(sq / max(count - 1, 1))
    return mean, std


class UnseenNASDataModule(InMemoryDataModule):
    """One of the eight Unseen-NAS datasets, or any dataset in the same .npy layout.

    Args:
        name: dataset folder name under `data_dir` (addnist, multnist, language, cifartile,
            gutenberg, isabella, geoclassing, chesseract, or a new name with explicit shapes).
        data_dir: the data root (`paths.data_dir`, env `NAS_DATA_DIR`).
        input_shape: (C, H, W) fed to the network; for a known name it must match the table
            (a guard against config typos); for a new name it is required.
        num_classes: label count; same rule as `input_shape`.
        pad: zero padding after normalisation (default from the table: 5 for chesseract).
        batch_size, on_device, seed, device: see `InMemoryDataModule`.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | Path = "data",
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        pad: int | None = None,
        batch_size: int = 256,
        on_device: bool = True,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        spec = UNSEEN_NAS_SPECS.get(str(name))
        if spec is None:
            if input_shape is None or num_classes is None:
                known = ", ".join(UNSEEN_NAS_SPECS)
                raise ValueError(
                    f"unknown Unseen-NAS dataset {name!r} (known: {known}); a new dataset in the "
                    "same layout needs explicit input_shape and num_classes"
                )
            pad = int(pad or 0)
            c, h, w = (int(v) for v in input_shape)
            spec = UnseenSpec((c, h - 2 * pad, w - 2 * pad), int(num_classes), pad)
        else:
            if pad is not None and int(pad) != spec.pad:
                raise ValueError(f"{name}: pad={pad} but the official preprocessing pads {spec.pad}")
            if input_shape is not None and tuple(int(v) for v in input_shape) != spec.input_shape:
                raise ValueError(
                    f"{name}: input_shape={list(input_shape)} but the official data gives "
                    f"{list(spec.input_shape)}"
                )
            if num_classes is not None and int(num_classes) != spec.num_classes:
                raise ValueError(f"{name}: num_classes={num_classes} but the data has {spec.num_classes}")
        super().__init__(
            name, spec.input_shape, spec.num_classes, batch_size, on_device, seed, device
        )
        self.spec = spec
        self.data_dir = Path(data_dir)
        self.folder = self.data_dir / self.name
        self.channel_mean: torch.Tensor | None = None
        self.channel_std: torch.Tensor | None = None

    # ------------------------------------------------------------------ loading
    def _load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self._check_files_exist()
        arrays = {split: self._read_split(split) for split in SPLITS}
        mean, std = channel_stats(arrays["train"][0])
        std = np.where(std > 0, std, 1.0)
        self.channel_mean = torch.tensor(mean, dtype=torch.float32)
        self.channel_std = torch.tensor(std, dtype=torch.float32)
        out = {}
        for split, (x_np, y_np) in arrays.items():
            x = self._normalise(x_np)
            if self.spec.pad:
                p = self.spec.pad
                x = F.pad(x, (p, p, p, p), mode="constant", value=0.0)
            out[split] = (x, torch.from_numpy(y_np.astype(np.int64)))
        return out

    def _normalise(self, x_np: np.ndarray) -> torch.Tensor:
        """float32 copy of the (possibly memory-mapped) array, normalised in place."""
        x = torch.from_numpy(np.array(x_np, dtype=np.float32, copy=True))
        mean = self.channel_mean.view(1, -1, 1, 1)
        std = self.channel_std.view(1, -1, 1, 1)
        for i in range(0, len(x), _STATS_CHUNK):
            x[i : i + _STATS_CHUNK].sub_(mean).div_(std)
        return x

    def _check_files_exist(self) -> None:
        if not self.folder.is_dir():
            raise DatasetError(
                f"Dataset {self.name!r}: folder {self.folder} does not exist. " + self._layout_help()
            )
        missing = [f for f in self._file_names() if not (self.folder / f).is_file()]
        if missing:
            raise DatasetError(
                f"Dataset {self.name!r}: {self.folder} lacks {', '.join(missing)}. "
                + self._layout_help()
            )

    def _read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        x_path, y_path = self.folder / f"{split}_x.npy", self.folder / f"{split}_y.npy"
        x, y = self._open(x_path), self._open(y_path)
        c, h, w = self.spec.raw_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != self.spec.raw_shape:
            raise self._file_error(
                x_path, f"has shape {tuple(x.shape)}; expected (N, {c}, {h}, {w}) (channels first)"
            )
        if x.dtype.kind not in _X_KINDS:
            raise self._file_error(x_path, f"has dtype {x.dtype}; expected float32 (or a real numeric dtype)")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise self._file_error(y_path, f"has shape {tuple(y.shape)}; expected (N,) class indices")
        if y.dtype.kind == "f":
            y = np.asarray(y)
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                raise self._file_error(y_path, f"has dtype {y.dtype} with non-integer values; expected integer labels")
        elif y.dtype.kind not in "iu":
            raise self._file_error(y_path, f"has dtype {y.dtype}; expected integer labels")
        if len(x) == 0:
            raise self._file_error(x_path, "holds no samples")
        if len(x) != len(y):
            raise self._file_error(y_path, f"has {len(y)} labels but {x_path.name} has {len(x)} samples")
        y = np.asarray(y)
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= self.num_classes:
            raise self._file_error(
                y_path, f"has labels in [{lo}, {hi}]; expected [0, {self.num_classes - 1}]"
            )
        return x, y

    def _open(self, path: Path) -> np.ndarray:
        """Memory-map one .npy file (reads the header only), or explain why it cannot be read."""
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(NPY_MAGIC))
        except OSError as err:
            raise self._file_error(path, f"cannot be read: {err.strerror}") from None
        if head != NPY_MAGIC:
            found = ("is empty" if not head else "is a zip archive (an .npz?)" if head.startswith(b"PK")
                     else f"starts with {head!r}")
            raise self._file_error(
                path, f"is not a NumPy .npy file: it {found}, not the bytes \\x93NUMPY that numpy.save "
                      "writes first"
            )
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:  # object arrays, bad header, truncated data
            reason = str(err)
            if "allow_pickle" in reason or "bject" in reason:
                reason = "it holds a pickled object array, not a plain numeric array"
            raise self._file_error(path, f"cannot be read as a .npy array: {reason}") from None
        except (OSError, EOFError) as err:
            raise self._file_error(path, f"cannot be read: {err}") from None

    # ------------------------------------------------------------------ messages
    def _file_names(self) -> list[str]:
        return [f"{s}_{k}.npy" for s in SPLITS for k in ("x", "y")]

    def _file_error(self, path: Path, problem: str) -> DatasetError:
        return DatasetError(f"Dataset {self.name!r}: {path} {problem}. " + self._layout_help())

    def _layout_help(self) -> str:
        """One line: the six files with their dtypes and shapes, the data root, the source."""
        c, h, w = self.spec.raw_shape
        xs = ", ".join(f"{s}_x.npy" for s in SPLITS)
        ys = ", ".join(f"{s}_y.npy" for s in SPLITS)
        return (
            f"Expected in {self.folder}/: {xs} (float32 (N, {c}, {h}, {w}), channels first) and "
            f"{ys} (integer (N,) labels in [0, {self.num_classes - 1}]), saved with numpy.save; "
            f"the data root is {self.data_dir} (set paths.data_dir or the NAS_DATA_DIR environment "
            f"variable). {UNSEEN_NAS_SOURCE}"
        )
