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
    finally:
        logger.finish()

Everything W&B shows is also on disk in the run dir (DESIGN §7):
    metrics.jsonl        one JSON object per ``log`` call: {"_step", "_time", **metrics}
    summary.json         the merged ``summary`` dicts (rewritten atomically)
    tables/<name>.csv    every ``table`` call (the latest version of each table)
so a run can be inspected, aggregated and compared without W&B.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["RunLogger", "NullLogger", "DiskLogger", "WandbRunLogger", "atomic_write_text", "to_jsonable"]


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

    ``metrics.csv`` is written at ``finish`` from ``metrics.jsonl`` (columns = union of keys),
    so a crash still leaves the line-buffered JSONL behind.
    """

    def __init__(self, run_dir: str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(run_dir if run_dir is not None else ".", **kwargs)
        assert self.run_dir is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._metrics_path = self.run_dir / "metrics.jsonl"
        self._summary_path = self.run_dir / "summary.json"
        self._metrics_fh = open(self._metrics_path, "a", encoding="utf-8", buffering=1)
        self._summary: dict[str, Any] = {}
        if self._summary_path.exists():  # resumed run: keep what is there
            try:
                self._summary = json.loads(self._summary_path.read_text())
            except (OSError, json.JSONDecodeError):
                self._summary = {}
        self._disk_summary(
            {"_run": {"job_type": self.job_type, "group": self.group, "name": self.name, "tags": self.tags}}
        )

    def _disk_summary(self, values: Mapping[str, Any]) -> None:
        self._summary.update(to_jsonable(dict(values)))
        atomic_write_text(self._summary_path, json.dumps(self._summary, indent=2, sort_keys=True) + "\n")

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self._finished:
            return
        row = {"_step": step, "_time": round(time.time(), 3), **to_jsonable(dict(metrics))}
        self._metrics_fh.write(json.dumps(row) + "\n")

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
        rows = []
        with open(self._metrics_path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:  # a torn last line after a crash
                        continue
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


class WandbRunLogger(DiskLogger):
    """``logger=wandb``: everything :class:`DiskLogger` writes, plus one W&B run.

    ``mode`` is ``offline`` by default (no network; ``wandb sync <run_dir>/wandb/offline-run-*``
    uploads later). The ``WANDB_MODE`` environment variable, when set, wins over ``mode``, so
    tests/CI (``WANDB_MODE=disabled``) never create runs. If ``wandb.init`` fails (e.g. ``online``
    without a key or network), we retry offline and then fall back to disk only, with a warning:
    a logging problem must never kill a search.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None = None,
        *,
        project: str = "einsurrogates",
        entity: str | None = None,
        mode: str = "offline",
        init_timeout_s: float = 90.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(run_dir, **kwargs)
        self.project = project
        self.entity = entity
        self.mode = os.environ.get("WANDB_MODE") or mode
        self.run = None
        self._init_wandb(init_timeout_s)

    def _init_wandb(self, init_timeout_s: float) -> None:
        os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb
        except ImportError:  # pragma: no cover - wandb is a dependency
            warnings.warn("wandb is not installed; logging to disk only", stacklevel=2)
            return
        modes = [self.mode] if self.mode in ("offline", "disabled") else [self.mode, "offline"]
        for mode in modes:
            try:
                self.run = wandb.init(
                    project=self.project,
                    entity=self.entity,
                    dir=str(self.run_dir),
                    name=self.name,
                    group=self.group,
                    job_type=self.job_type,
                    tags=self.tags or None,
                    config=to_jsonable(self.config),
                    mode=mode,
                    reinit="finish_previous",
                    settings=wandb.Settings(init_timeout=init_timeout_s, console="off"),
                )
                self.mode = mode
                return
            except Exception as exc:  # noqa: BLE001 - any init failure must not kill the job
                warnings.warn(f"wandb.init(mode={mode!r}) failed: {exc!r}", stacklevel=2)
        warnings.warn("W&B unavailable; logging to disk only", stacklevel=2)

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        super().log(metrics, step)
        if self.run is not None and not self._finished:
            self.run.log(to_jsonable(dict(metrics)), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        super().summary(values)
        if self.run is not None and not self._finished:
            self.run.summary.update(to_jsonable(dict(values)))

    def table(self, name: str, dataframe: Any) -> None:
        super().table(name, dataframe)
        if self.run is not None and not self._finished:
            import wandb

            self.run.log({name: wandb.Table(dataframe=dataframe)})

    def define_metric(self, name: str, step_metric: str | None = None, summary: str | None = None) -> None:
        if self.run is not None and not self._finished:
            self.run.define_metric(name, step_metric=step_metric, summary=summary)

    def finish(self) -> None:
        if self._finished:
            return
        try:
            if self.run is not None:
                self.run.finish()
        finally:
            self.run = None
            super().finish()
