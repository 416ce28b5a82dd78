"""Keep a run dir's ``.hydra/`` describing the run that is in it.

Hydra writes ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` for every command,
before the task runs, so a command the search then refuses (a changed experiment, a damaged
checkpoint) or that finds its search already finished would leave a record of a run that never
happened. So:

* when a command is accepted (a fresh start, a resume or an extension), its three files are
  copied to ``.hydra/accepted/``;
* when a command is refused, its files are moved to ``.hydra/refused-<time>/`` (to diagnose
  what was asked) and those in ``accepted/`` are copied back;
* when a finished search is rerun, the accepted files are copied back (nothing else is kept:
  the rerun changed nothing).

A run recorded before this existed has no ``accepted/``: a refusal then leaves ``.hydra/`` as
Hydra wrote it and says so in a warning. Each job of a multirun has its own ``.hydra/`` in its
own directory; this works per job. Outside Hydra (tests that build a ``SearchRunner``
directly) nothing is done.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
ACCEPTED = "accepted"


class HydraRecord:
    def __init__(self, directory: str | os.PathLike | None):
        self.dir = None if directory is None else Path(directory)

    @classmethod
    def of_current_job(cls, run_dir: str | os.PathLike) -> HydraRecord:
        """The ``.hydra`` folder Hydra wrote for this job, if the job's output dir is ``run_dir``."""
        try:
            from hydra.core.hydra_config import HydraConfig

            config = HydraConfig.get()
        except (ImportError, ValueError):  # not inside a Hydra job
            return cls(None)
        subdir = config.get("output_subdir")
        output_dir = config.runtime.get("output_dir")
        if not subdir or not output_dir or Path(output_dir).resolve() != Path(run_dir).resolve():
            return cls(None)
        return cls(Path(output_dir) / subdir)

    @property
    def active(self) -> bool:
        return self.dir is not None and self.dir.is_dir()

    @property
    def accepted_dir(self) -> Path | None:
        return None if self.dir is None else self.dir / ACCEPTED

    def has_snapshot(self) -> bool:
        return self.active and any((self.accepted_dir / name).exists() for name in FILES)

    def accept(self) -> None:
        """This command's files describe the run from now on: copy them to ``accepted/``."""
        if not self.active:
            return
        present = [name for name in FILES if (self.dir / name).exists()]
        if not present:
            return
        self.accepted_dir.mkdir(exist_ok=True)
        for name in present:
            _copy_atomic(self.dir / name, self.accepted_dir / name)
        for name in set(FILES) - set(present):
            (self.accepted_dir / name).unlink(missing_ok=True)

    def refuse(self) -> Path | None:
        """This command was refused: keep its files in ``refused-<time>/`` and put the accepted
        ones back. Returns the folder of the refused files (None when nothing was done)."""
        if not self.active:
            return None
        if not self.has_snapshot():
            if not any((self.dir / name).exists() for name in FILES):
                return None
            log.warning("%s holds no copy of the config of the run in this directory (recorded before "
                        "runs kept one in %s/): its config.yaml and overrides.yaml now describe this refused "
                        "command; the run's experiment is in experiment.json", self.dir, ACCEPTED)
            return None
        if self._matches_snapshot():
            return None  # already describes the run (refused twice, or the same command)
        refused = unique_dir(self.dir / f"refused-{time.strftime('%Y%m%d-%H%M%S')}")
        for name in FILES:
            if (self.dir / name).exists():
                shutil.move(str(self.dir / name), str(refused / name))
        self._put_back()
        log.info("the refused command's .hydra files are in %s; .hydra/ describes the run in %s again",
                 refused, self.dir.parent)
        return refused

    def restore(self) -> None:
        """Put the accepted files back (a finished search was rerun: nothing changes)."""
        if self.has_snapshot():
            self._put_back()

    def _matches_snapshot(self) -> bool:
        def content(path: Path) -> bytes | None:
            return path.read_bytes() if path.exists() else None

        return all(content(self.dir / name) == content(self.accepted_dir / name) for name in FILES)

    def _put_back(self) -> None:
        for name in FILES:
            saved = self.accepted_dir / name
            if saved.exists():
                _copy_atomic(saved, self.dir / name)
            else:
                (self.dir / name).unlink(missing_ok=True)


def unique_dir(path: Path) -> Path:
    """Create ``path`` (or ``path-2``, ``path-3``, ... when it exists) and return it."""
    candidate, n = path, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}-{n}")


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def keep_run_config(run_dir: str | os.PathLike) -> Path | None:
    """For an entry point that refuses a command before the search starts (bad input): if
    ``run_dir`` holds a run, put its accepted ``.hydra`` files back (see ``HydraRecord.refuse``).
    Safe to call after the runner has already done so."""
    if not (Path(run_dir) / "experiment.json").exists():
        return None
    return HydraRecord.of_current_job(run_dir).refuse()
