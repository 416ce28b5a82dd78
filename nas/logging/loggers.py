"""One run logger for every entry point: W&B (offline by default), disk only, or nothing.

Why our own object instead of Lightning's ``WandbLogger``: candidates are trained with
``logger=False`` (one W&B run per *job*, not per candidate; ecosystem.md §3.3), and the search
runner logs search-level metrics (``search/iteration``, ``surrogate/kendall_tau``, ...) that have
nothing to do with a Lightning loop. So train.py, search.py and evaluate.py all talk to this one
small interface:

    logger = make_logger(run_dir=..., job_type="train", name=..., config=...)
    try:
        logger.log({"train/loss": 0.3, "epoch": 1}, step=1)
        logger.summary({"val/acc": 0.9})
        logger.table("predicted_vs_true", dataframe)
        logger.image("best_so_far", run_dir / "best_so_far.png")
    finally:
        logger.finish()

Everything W&B shows is also on disk in the run dir (DESIGN §7):
    metrics.jsonl        one JSON object per ``log`` call: {"_step", "_time", **metrics}
    summary.json         the merged ``summary`` dicts (rewritten atomically)
    tables/<name>.csv    every ``table`` call (the latest version of each table)
    (images)             ``image`` logs a file its caller already wrote, so disk needs nothing more
so a run can be inspected, aggregated and compared without W&B.

Restarts (a resumed search reopens the same run dir):
    metrics.jsonl        append-only, across restarts: rows logged again after a restart (the
                         candidate redone after the last checkpoint) appear twice
    metrics.csv          rewritten from metrics.jsonl at ``finish``: one row per step, the merge of
                         every row logged at that step, later values winning (W&B's history rule), so
                         a redone step keeps its last values; rows without a step are kept as they are
    wandb_run_id         the W&B run id of this run dir, made once: every start resumes the same W&B
                         run (``resume="allow"``), and steps at or below the last step logged before
                         the restart are kept on disk only, so W&B's step only ever grows
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.logging.files import _read_jsonl, atomic_write_text, merge_rows_by_step, to_jsonable

log = logging.getLogger(__name__)

__all__ = [
    "RunLogger",
    "NullLogger",
    "DiskLogger",
    "atomic_write_text",
    "to_jsonable",
    "merge_rows_by_step",
    "LOGGER_OUTPUTS",
    "WANDB_RUN_ID_FILE",
]

WANDB_RUN_ID_FILE = "wandb_run_id"
# Everything a logger may write into a run dir (what a restart of the run must move aside with it).
LOGGER_OUTPUTS = ("metrics.jsonl", "metrics.csv", "summary.json", "tables", "wandb", WANDB_RUN_ID_FILE)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "table"


class RunLogger:
    """The interface (and the ``none`` variant's behaviour: every call is a no-op).

    Attributes every variant has: ``run_dir`` (Path or None), ``job_type``, ``group``, ``name``.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None = None,
        *,
        job_type: str | None = None,
        group: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.job_type = job_type
        self.group = group
        self.name = name
        self.config = dict(config) if config else {}
        self.tags = list(tags or [])
        self._finished = False

    # --- the interface -------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record one row of metrics; ``step`` is the x-axis (epoch, search iteration, ...)."""

    def summary(self, values: Mapping[str, Any]) -> None:
        """Set run-level values (final accuracy, status, ...); later calls update earlier ones."""

    def table(self, name: str, dataframe: Any) -> None:
        """Log a pandas DataFrame as a table (W&B Table, and ``tables/<name>.csv`` on disk)."""

    def image(self, name: str, path: str | os.PathLike) -> None:
        """Log an image file already written to disk (a W&B Image; on disk the file is the record)."""

    def define_metric(self, name: str, step_metric: str | None = None, summary: str | None = None) -> None:
        """Declare a custom x-axis / summary for a metric (W&B ``define_metric``); disk ignores it."""

    def finish(self) -> None:
        """Close the run. Idempotent; call it in ``finally``."""
        self._finished = True

    # --- conveniences --------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._finished

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_dir={self.run_dir}, job_type={self.job_type}, group={self.group})"


class NullLogger(RunLogger):
    """``logger=none``: logs nothing anywhere (entry points still write their ``result.json``)."""


class DiskLogger(RunLogger):
    """``logger=csv``: ``metrics.jsonl``, ``metrics.csv``, ``summary.json`` and ``tables/*.csv``.

    ``metrics.csv`` is written at ``finish`` from ``metrics.jsonl`` (columns = union of keys, one
    row per step: :func:`merge_rows_by_step`), so a crash still leaves the line-buffered JSONL
    behind. A second logger on the same run dir (a resumed run) appends to ``metrics.jsonl``;
    ``previous_step`` is the highest step the earlier lifetimes logged (``None`` if none).
    """

    def __init__(self, run_dir: str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(run_dir if run_dir is not None else ".", **kwargs)
        assert self.run_dir is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._metrics_path = self.run_dir / "metrics.jsonl"
        self._summary_path = self.run_dir / "summary.json"
        self.reopened = self._metrics_path.exists()  # an earlier logger wrote into this run dir
        self.previous_step = self._previous_step()
        self._metrics_fh = open(self._metrics_path, "a", encoding="utf-8", buffering=1)
        self._rows = 0  # rows logged by this logger
        self._summary: dict[str, Any] = {}
        self._summary_text: str | None = None
        if self._summary_path.exists():  # resumed run: keep what is there
            try:
                self._summary_text = self._summary_path.read_text()
                self._summary = json.loads(self._summary_text)
            except (OSError, json.JSONDecodeError):
                self._summary = {}
        self._disk_summary(
            {"_run": {"job_type": self.job_type, "group": self.group, "name": self.name, "tags": self.tags}}
        )

    def _previous_step(self) -> int | float | None:
        """The highest step in an existing ``metrics.jsonl``; also ends a torn last line (a kill mid-write)."""
        try:
            size = self._metrics_path.stat().st_size
        except FileNotFoundError:
            return None
        if size:
            with open(self._metrics_path, "rb+") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # else the next row would be glued to the torn one and lost too
                    fh.write(b"\n")
        steps = [r["_step"] for r in _read_jsonl(self._metrics_path)
                 if isinstance(r.get("_step"), (int, float)) and not isinstance(r.get("_step"), bool)]
        return max(steps) if steps else None

    def _disk_summary(self, values: Mapping[str, Any]) -> None:
        self._summary.update(to_jsonable(dict(values)))
        text = json.dumps(self._summary, indent=2, sort_keys=True) + "\n"
        if text != self._summary_text:  # a rerun that changes nothing rewrites nothing
            atomic_write_text(self._summary_path, text)
            self._summary_text = text

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self._finished:
            return
        row = {"_step": step, "_time": round(time.time(), 3), **to_jsonable(dict(metrics))}
        self._metrics_fh.write(json.dumps(row) + "\n")
        self._rows += 1

    def summary(self, values: Mapping[str, Any]) -> None:
        if not self._finished:
            self._disk_summary(values)

    def table(self, name: str, dataframe: Any) -> None:
        if self._finished:
            return
        path = self.run_dir / "tables" / f"{_safe_name(name)}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, dataframe.to_csv(index=False))

    def _write_metrics_csv(self) -> None:
        if not self._rows and (self.run_dir / "metrics.csv").exists():
            return  # nothing new (e.g. a finished run started again): leave it as it is
        rows = merge_rows_by_step(_read_jsonl(self._metrics_path))
        if not rows:
            return
        import pandas as pd

        atomic_write_text(self.run_dir / "metrics.csv", pd.DataFrame(rows).to_csv(index=False))

    def finish(self) -> None:
        if self._finished:
            return
        try:
            self._metrics_fh.close()
            self._write_metrics_csv()
        finally:
            super().finish()
