"""Feature tables: the per-run CSVs of extracted features (seed_system §8.1) and how runs are pooled.

A feature file is ``<dataset>_seed=<seed>.csv`` with the columns ``id``, the feature columns
(385 GRAF + 7 ZCP in the paper) and ``accuracy``; rows are in search order. ``find_feature_files``
lists a directory of them, ``read_feature_table`` reads one, and ``stack_sources`` pools several
sources (files, runs) for training: rows with a non-finite or non-positive accuracy dropped (a zero
is a failed candidate), targets normalised *within each source* by a policy
(``surrogates.normalisation``), columns aligned by name.

The dataset of a file is the whole name before ``_seed=``, matched exactly (the original excluded
every file whose name merely contains ``<dataset>_``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from surrogates.normalisation import normalise

__all__ = [
    "ID_COLUMN",
    "TARGET_COLUMN",
    "FEATURE_FILE_PATTERN",
    "feature_columns",
    "find_feature_files",
    "read_feature_table",
    "load_feature_archive",
    "usable_rows",
    "stack_sources",
]

ID_COLUMN = "id"
TARGET_COLUMN = "accuracy"
FEATURE_FILE_PATTERN = "<dataset>_seed=<seed>.csv"
_FILE_RE = re.compile(r"^(?P<dataset>.+)_seed=(?P<seed>\d+)\.csv$")


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column except ``id`` and ``accuracy``, in the frame's order."""
    return [str(c) for c in frame.columns if str(c) not in (ID_COLUMN, TARGET_COLUMN)]


def find_feature_files(directory: str | Path) -> list[tuple[str, int, Path]]:
    """``(dataset, seed, path)`` for every feature file in ``directory``, sorted by dataset, seed.

    A missing directory or one without any feature file raises ``FileNotFoundError`` naming the
    directory and the expected file pattern.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(
            f"feature-file directory {root} does not exist; expected files named "
            f"{FEATURE_FILE_PATTERN} (columns id, features..., accuracy)"
        )
    found = []
    for path in root.iterdir():
        match = _FILE_RE.match(path.name)
        if match and path.is_file():
            found.append((match["dataset"], int(match["seed"]), path))
    if not found:
        raise FileNotFoundError(
            f"no feature files in {root}; expected files named {FEATURE_FILE_PATTERN} "
            f"(columns id, features..., accuracy)"
        )
    return sorted(found, key=lambda t: (t[0], t[1]))


def read_feature_table(path: str | Path) -> pd.DataFrame:
    """One feature file; it must have an ``accuracy`` column and at least one feature column."""
    frame = pd.read_csv(path)
    frame.columns = [str(c) for c in frame.columns]
    if TARGET_COLUMN not in frame.columns:
        raise ValueError(f"{path}: no {TARGET_COLUMN!r} column (columns: {list(frame.columns)[:8]}...)")
    if not feature_columns(frame):
        raise ValueError(f"{path}: no feature columns besides {ID_COLUMN!r} and {TARGET_COLUMN!r}")
    return frame


def load_feature_archive(
    directory: str | Path, datasets: Iterable[str] | None = None
) -> dict[str, dict[int, pd.DataFrame]]:
    """``{dataset: {seed: frame}}`` for the feature files in ``directory`` (optionally some datasets)."""
    wanted = None if datasets is None else set(datasets)
    archive: dict[str, dict[int, pd.DataFrame]] = {}
    for dataset, seed, path in find_feature_files(directory):
        if wanted is None or dataset in wanted:
            archive.setdefault(dataset, {})[seed] = read_feature_table(path)
    return archive


def usable_rows(accuracy: Sequence[float] | np.ndarray, drop_zero: bool = True) -> np.ndarray:
    """Mask of training rows: finite accuracy, and above zero when ``drop_zero``."""
    acc = np.asarray(accuracy, dtype=float).ravel()
    keep = np.isfinite(acc)
    if drop_zero:
        keep &= acc > 0
    return keep


def stack_sources(
    frames: Sequence[pd.DataFrame],
    columns: Sequence[str],
    policy: str | None = "raw",
    drop_zero: bool = True,
    labels: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Pool sources for training: ``(X with exactly `columns`, normalised y)``.

    Each frame is one source: its unusable rows are dropped and its ``accuracy`` normalised with
    ``policy`` on its own. A frame without one of ``columns`` raises ``ValueError`` naming the
    source (``labels[i]``, else its position) and the missing columns.
    """
    columns = list(columns)
    names = list(labels) if labels is not None else [f"source {i}" for i in range(len(frames))]
    xs, ys = [], []
    for frame, label in zip(frames, names, strict=True):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} in all)" if len(missing) > 10 else "")
            raise ValueError(f"{label}: missing feature column(s) {shown}")
        if TARGET_COLUMN not in frame.columns:
            raise ValueError(f"{label}: no {TARGET_COLUMN!r} column")
        keep = usable_rows(frame[TARGET_COLUMN], drop_zero)
        rows = frame.loc[keep]
        xs.append(rows[columns])
        ys.append(normalise(rows[TARGET_COLUMN].to_numpy(dtype=float), policy))
    if not xs:
        return pd.DataFrame(columns=columns, dtype=float), np.zeros(0)
    return pd.concat(xs, ignore_index=True), np.concatenate(ys)
