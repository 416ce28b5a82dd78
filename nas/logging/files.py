"""A run's files on disk: JSON-safe values, atomic writes, and the metrics history (JSONL)."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy/torch scalars, paths and containers; NaN/inf become None."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return to_jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist())
    return str(value)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so readers never see a half-written file (tmp + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def merge_rows_by_step(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per ``_step`` (in order of first appearance), later values winning; step-less rows as they are.

    The rule W&B applies to its history, used for ``metrics.csv``: the rows a search logs at one
    iteration (candidate, surrogate refit) become one row, and a step logged again after a restart
    (the redone candidate) keeps its last values.
    """
    merged: list[dict[str, Any]] = []
    by_step: dict[Any, dict[str, Any]] = {}
    for row in rows:
        step = row.get("_step")
        if step is None:
            merged.append(dict(row))
        elif step in by_step:
            by_step[step].update(row)
        else:
            by_step[step] = dict(row)
            merged.append(by_step[step])
    return merged


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file; lines that are not a JSON object (a torn line after a crash) are skipped."""
    rows = []
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return rows
    with fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows
