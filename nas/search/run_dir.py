"""The run directory of a search: which experiment it holds, setting an earlier run aside, the
debris a kill leaves, and whether the search in it has already finished.

Nothing a run wrote is deleted: a restart moves it into ``restarted-<time>/``, and a command that
would resume a different experiment is refused before it writes anything.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from nas.logging import atomic_write_text, to_jsonable
from nas.search.errors import SearchError
from nas.search.hydra_record import FILES as HYDRA_FILES
from nas.search.hydra_record import HydraRecord, unique_dir
from nas.search.identity import diff_configs, experiment_config, with_legacy_values

log = logging.getLogger(__name__)

CHECKPOINT, EXPERIMENT, RESULT = "checkpoint.json", "experiment.json", "result.json"


def check_experiment(run_dir: Path, cfg: DictConfig) -> None:
    """Refuse to resume a run dir that holds a different experiment."""
    path = run_dir / EXPERIMENT
    if not path.exists():
        return
    saved = with_legacy_values(json.loads(path.read_text()))
    differences = diff_configs(saved, to_jsonable(experiment_config(cfg)))
    if differences:
        raise SearchError(
            f"{run_dir} holds a search with a different experiment config:\n  "
            + "\n  ".join(differences)
            + "\nUse the same settings to resume it, another run directory (hydra.run.dir=...), "
              "or search.restart=true to start this one over (the old files are kept aside).")


def record_experiment(run_dir: Path, cfg: DictConfig) -> None:
    """The run dir now holds this experiment (written once, when a command is accepted)."""
    path = run_dir / EXPERIMENT
    if not path.exists():
        atomic_write_text(path, json.dumps(to_jsonable(experiment_config(cfg)), indent=2))


def saved_result(run_dir: Path, iteration: int, archive_len: int, budget: int) -> dict[str, Any] | None:
    """``result.json`` if it was written for this state with a budget at least ``budget``: the
    search has finished and a rerun has nothing to do."""
    try:
        saved = json.loads((run_dir / RESULT).read_text(encoding="utf-8"))
        finished = (saved["iterations"] == iteration and saved["candidates"]["evaluated"] == archive_len
                    and int(saved["budget"]) >= budget)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return saved if finished else None


def set_aside_previous_run(run_dir: Path) -> None:
    """``search.restart=true``: move everything the earlier run wrote into ``restarted-<time>/``.

    The rule: every entry of the run dir moves, except the files Hydra wrote for this command
    (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``; the rest of ``.hydra/``, the
    earlier run's accepted config and refused commands, moves to ``restarted-<time>/.hydra/``),
    earlier ``restarted-*`` folders, and the log files this process has open in the run dir
    (Hydra's ``search.log``): their earlier lines are copied aside and the file is emptied."""
    if not run_dir.exists():
        return
    open_logs = _open_log_files(run_dir)
    hydra_dir = HydraRecord.of_current_job(run_dir).dir or run_dir / ".hydra"
    moves: list[tuple[Path, Path]] = []
    for entry in sorted(run_dir.iterdir()):
        if entry.name.startswith("restarted-") and entry.is_dir():
            continue
        if entry == hydra_dir and entry.is_dir():
            moves += [(sub, Path(hydra_dir.name) / sub.name) for sub in sorted(entry.iterdir())
                      if sub.name not in HYDRA_FILES]
            continue
        if entry.resolve() in open_logs:
            if entry.stat().st_size:
                moves.append((entry, Path(entry.name)))  # copied, then emptied
            continue
        moves.append((entry, Path(entry.name)))
    if all(source.resolve() in open_logs for source, _ in moves):
        return  # nothing but this job's own log: no run to set aside
    aside = unique_dir(run_dir / f"restarted-{time.strftime('%Y%m%d-%H%M%S')}")
    for source, name in moves:
        target = aside / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() in open_logs:
            shutil.copyfile(source, target)
            with open(source, "r+b") as fh:  # the handler appends (O_APPEND): it writes at the new end
                fh.truncate(0)
        else:
            shutil.move(str(source), str(target))
    log.warning("search.restart=true: the previous run's files (%d entries) moved to %s", len(moves), aside)


def _open_log_files(run_dir: Path) -> set[Path]:
    """Files in ``run_dir`` that this process's logging handlers write (Hydra's job log)."""
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    root = run_dir.resolve()
    found = set()
    for logger in loggers:
        for handler in logger.handlers:
            name = getattr(handler, "baseFilename", None)
            if name and Path(name).resolve().parent == root:
                found.add(Path(name).resolve())
    return found


def remove_stale_temporary_files(run_dir: Path) -> None:
    """Remove ``.<name>.<pid>.tmp`` files that a process killed during an atomic write left in the
    run dir, ``figures/`` or ``tables/`` (the file they were to replace is intact). Only for
    processes of this host that are gone; the name says which process wrote it."""
    for path in [p for folder in (run_dir, run_dir / "figures", run_dir / "tables") for p in folder.glob(".*.tmp")]:
        match = re.fullmatch(r"\.(.+)\.(\d+)\.tmp", path.name)
        if match is None or int(match.group(2)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(2)), 0)
            continue  # that process still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        path.unlink(missing_ok=True)
        log.info("removed %s, left by a process killed while writing %s", path, match.group(1))
