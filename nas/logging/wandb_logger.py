"""The W&B variant of the run logger: everything on disk (``DiskLogger``) plus one W&B run per run
dir, resumed on every start (see :mod:`nas.logging.loggers` for the restart rules)."""
from __future__ import annotations

import logging
import os
import re
import secrets
import string
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.logging.files import _read_jsonl, atomic_write_text, merge_rows_by_step, to_jsonable
from nas.logging.loggers import WANDB_RUN_ID_FILE, DiskLogger
from nas.logging.wandb_history import wandb_history_steps

log = logging.getLogger(__name__)
_RUN_ID_RE = re.compile(r"^[a-z0-9_-]{1,64}$", re.IGNORECASE)


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

    def image(self, name: str, path: str | os.PathLike) -> None:
        """A W&B Image of the file at ``path``, at the step of the last ``log`` call (as ``table``)."""
        super().image(name, path)
        if self.run is not None and not self._finished and self._to_wandb(self._last_step):
            import wandb

            self.run.log({name: wandb.Image(str(path))}, step=self._last_step)

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
