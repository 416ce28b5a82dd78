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
import math
import os
import re
import secrets
import string
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "RunLogger",
    "NullLogger",
    "DiskLogger",
    "WandbRunLogger",
    "atomic_write_text",
    "to_jsonable",
    "merge_rows_by_step",
    "LOGGER_OUTPUTS",
    "WANDB_RUN_ID_FILE",
]

WANDB_RUN_ID_FILE = "wandb_run_id"
# Everything a logger may write into a run dir (what a restart of the run must move aside with it).
LOGGER_OUTPUTS = ("metrics.jsonl", "metrics.csv", "summary.json", "tables", "wandb", WANDB_RUN_ID_FILE)
_RUN_ID_RE = re.compile(r"^[a-z0-9_-]{1,64}$", re.IGNORECASE)


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


def wandb_history_steps(path: str | os.PathLike) -> list[int]:
    """The history steps stored in one offline W&B transaction log (``run-<id>.wandb``).

    The file is a LevelDB-style log (a 7-byte ``:W&B`` header, then 32 KiB blocks of records with a
    7-byte header: crc, length, type) of ``wandb.proto`` ``Record`` messages. Reading stops at the
    first torn or unreadable record: a killed process leaves whatever wandb-core had flushed (every
    15 s by default in wandb 0.31, so a short-lived start may leave the header only). Raises
    ``ValueError`` when the file is not in this format (another wandb version).
    """
    from wandb.proto import wandb_internal_pb2

    block, header = 32 * 1024, 7
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    steps: list[int] = []
    pos, pending = header, b""
    while pos + header <= len(data):
        left = block - pos % block
        if left < header:  # block trailer
            pos += left
            continue
        length = int.from_bytes(data[pos + 4:pos + 6], "little")
        kind = data[pos + 6]
        pos += header
        if (length == 0 and kind == 0) or pos + length > len(data) or kind not in (1, 2, 3, 4):
            break  # padding at the end, or a torn record
        chunk, pos = data[pos:pos + length], pos + length
        if kind == 2:  # first
            pending = chunk
            continue
        if kind == 3:  # middle
            pending += chunk
            continue
        payload, pending = (pending + chunk if kind == 4 else chunk), b""
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError; a damaged record ends the scan
            break
        if record.WhichOneof("record_type") == "history":
            steps.append(int(record.history.step.num))
    return steps


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


class WandbRunLogger(DiskLogger):
    """``logger=wandb``: everything :class:`DiskLogger` writes, plus one W&B run.

    ``mode`` is ``offline`` by default (no network; ``wandb sync <run_dir>/wandb/offline-run-*``
    uploads later). The ``WANDB_MODE`` environment variable, when set, wins over ``mode``, so
    tests/CI (``WANDB_MODE=disabled``) never create runs. If ``wandb.init`` fails (e.g. ``online``
    without a key or network), we retry offline and then fall back to disk only, with a warning:
    a logging problem must never kill a search.

    One W&B run per run dir: the run id is made once and kept in ``<run_dir>/wandb_run_id``
    (``run_id`` sets it explicitly), and every start passes ``id=..., resume="allow"``, so a
    resumed search continues the same run instead of starting a new one. Offline, each start
    writes its own ``wandb/offline-run-<time>-<id>/`` folder (wandb 0.31 does not look at the
    earlier ones); ``wandb sync`` uploads the folders of one id into one run, in order of start
    time. The id goes with ``metrics.jsonl``: if that file is gone (a restart moved the logs
    aside), the next start makes a new id, i.e. a new W&B run.

    W&B keeps what the disk keeps, with a step that only grows. A killed process loses the rows
    wandb-core had not yet written to its ``.wandb`` file (it flushes every 15 s), so at each start
    ``wandb_step`` is the last step W&B holds (read from the earlier ``.wandb`` files of this id, or
    the server's ``starting_step`` online); the rows of ``metrics.jsonl`` above it are sent again
    (``backfilled``). Afterwards a row goes to W&B only if its step is above ``wandb_step`` and not
    below the last step sent (a step logged again right after its backfill merges into it, later
    values winning, as in ``metrics.csv``); the others (the candidate the search redoes, when W&B
    already had it) stay on disk only, so W&B keeps the earlier values for that one step.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None = None,
        *,
        project: str = "einsurrogates",
        entity: str | None = None,
        mode: str = "offline",
        init_timeout_s: float = 90.0,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(run_dir, **kwargs)
        self.project = project
        self.entity = entity
        self.mode = os.environ.get("WANDB_MODE") or mode
        self.run = None
        self.run_id: str | None = None
        self.resumed = False  # True when this run dir already had a W&B run id
        self.wandb_step: int | float | None = None  # the last step W&B held when this logger started
        self.backfilled: list[Any] = []  # steps re-sent from metrics.jsonl at this start
        self._sent_step: int | float | None = None  # the last step sent to W&B by this logger
        self._last_step: int | float | None = None  # the step of the last `log` call
        self._skipped_steps: list[Any] = []
        if self.mode != "disabled":
            self.run_id, self.resumed = self._load_run_id(run_id)
        self._init_wandb(init_timeout_s)
        if self.run is not None and self.mode != "disabled":
            self._backfill()

    # --- the run id of this run dir ------------------------------------------------------
    def _load_run_id(self, explicit: str | None) -> tuple[str, bool]:
        """The run id of this run dir (made and stored on first use) and whether it existed."""
        path = self.run_dir / WANDB_RUN_ID_FILE
        stored = None
        try:
            stored = path.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            pass
        except OSError as err:
            warnings.warn(f"could not read {path}: {err}", stacklevel=3)
        if stored is not None and not _RUN_ID_RE.match(stored):
            warnings.warn(f"{path} does not hold a W&B run id ({stored[:40]!r}); starting a new W&B run",
                          stacklevel=3)
            stored = None
        if explicit:
            explicit = str(explicit).strip()
            if not _RUN_ID_RE.match(explicit):
                raise ValueError(f"logger.run_id={explicit!r} is not a W&B run id (letters, digits, '_' and '-')")
            if stored is not None and stored != explicit:
                warnings.warn(f"logger.run_id={explicit!r} replaces the W&B run id {stored!r} stored in {path}",
                              stacklevel=3)
            run_id, resumed = explicit, stored == explicit
        elif stored is not None and not self.reopened:
            # The W&B run of a run dir goes with its metrics.jsonl: when that is gone (moved aside by a
            # restart, or deleted), W&B's history and the disk would disagree; start a new run instead.
            warnings.warn(f"{path} names W&B run {stored!r} but {self._metrics_path.name} is gone; "
                          "starting a new W&B run", stacklevel=3)
            run_id, resumed = self._new_run_id(), False
        elif stored is not None:
            run_id, resumed = stored, True
        else:
            run_id, resumed = self._new_run_id(), False
        if stored != run_id:
            atomic_write_text(path, run_id + "\n")
        return run_id, resumed

    @staticmethod
    def _new_run_id() -> str:
        alphabet = string.ascii_lowercase + string.digits  # what wandb's own ids look like
        return "".join(secrets.choice(alphabet) for _ in range(8))

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
                    id=self.run_id,
                    resume="allow" if self.run_id else None,
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

    def _steps_in_wandb(self) -> int | float | None:
        """The last step W&B already holds for this run (``None``: none); see the class docstring."""
        steps: list[int | float] = []
        starting = int(getattr(self.run, "starting_step", 0) or 0)
        if starting > 0:  # online resume: the server says where the run is
            steps.append(starting - 1)
        current = Path(self.run.dir).parent if getattr(self.run, "dir", None) else None
        for path in sorted((self.run_dir / "wandb").glob(f"*run-*-{self.run_id}*/run-{self.run_id}.wandb")):
            if current is not None and path.parent == current:
                continue
            try:
                steps.extend(wandb_history_steps(path))
            except Exception as err:  # noqa: BLE001 - another wandb version: assume W&B has it all
                log.warning("could not read %s (%s); assuming W&B holds every step logged before", path, err)
                return self.previous_step
        return max(steps) if steps else None

    def _backfill(self) -> None:
        """Send the rows of ``metrics.jsonl`` that W&B does not hold (lost when a start was killed)."""
        self.wandb_step = self._steps_in_wandb() if self.reopened else None
        if self.previous_step is None or (self.wandb_step is not None and self.wandb_step >= self.previous_step):
            return
        for row in merge_rows_by_step(_read_jsonl(self._metrics_path)):
            step = row.get("_step")
            if not isinstance(step, (int, float)) or isinstance(step, bool):
                continue
            if self.wandb_step is None or step > self.wandb_step:
                self.run.log({k: v for k, v in row.items() if k not in ("_step", "_time")}, step=step)
                self.backfilled.append(step)
        if self.backfilled:
            self._sent_step = self.backfilled[-1]
            log.info("W&B run %s: re-sent %d rows of metrics.jsonl (steps %s to %s) that W&B did not hold",
                     self.run_id, len(self.backfilled), self.backfilled[0], self.backfilled[-1])

    def _to_wandb(self, step: int | float | None) -> bool:
        """Whether a row at ``step`` goes to W&B (see the class docstring); remembers the step sent."""
        if step is None:
            return True
        if (self.wandb_step is None or step > self.wandb_step) and (self._sent_step is None or step >= self._sent_step):
            self._sent_step = step
            return True
        if not self._skipped_steps:
            log.info("W&B run %s already holds step %s (logged before the restart); rows logged again for "
                     "it are kept on disk only (metrics.jsonl)", self.run_id, step)
        self._skipped_steps.append(step)
        return False

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        super().log(metrics, step)
        if self.run is not None and not self._finished:
            if step is not None:
                self._last_step = step
            if self._to_wandb(step):
                self.run.log(to_jsonable(dict(metrics)), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        super().summary(values)
        if self.run is not None and not self._finished:
            self.run.summary.update(to_jsonable(dict(values)))

    def table(self, name: str, dataframe: Any) -> None:
        """A W&B Table at the step of the last ``log`` call (so it is kept or skipped with that row)."""
        super().table(name, dataframe)
        if self.run is not None and not self._finished and self._to_wandb(self._last_step):
            import wandb

            self.run.log({name: wandb.Table(dataframe=dataframe)}, step=self._last_step)

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
