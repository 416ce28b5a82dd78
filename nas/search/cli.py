"""search.py's task: run (or resume) one search in the Hydra run dir, with clean user errors.

Bad input is refused before anything is built, trained or written (seed, budget, the sources a
surrogate reads), as one line ``search.py: error: ...`` and exit status 1. Ctrl-C prints one line
saying where the search stopped and the command that resumes it, and exits with status 130.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nas.hydra_utils import CtrlC, command_line, group_factory, hydra_run_dir, single_run
from nas.validation import InputError, check_budget, check_seed

# torch, Lightning and the runner are imported after the checks: a bad value is reported in a
# second, not after the ten it takes to import them on a busy machine.


def check_inputs(cfg: DictConfig) -> None:
    """The up-front checks: seed and budget are whole numbers in range, and a surrogate that reads
    files made by other runs (``tr_rf``) finds them. Raises :class:`InputError`."""
    check_seed(cfg.get("seed"))
    check_budget(OmegaConf.select(cfg, "search.budget"))
    check_surrogate_sources(cfg)


def check_surrogate_sources(cfg: DictConfig) -> None:
    """Predictors with ``check_sources()`` (``tr_rf``: the other datasets' feature files) are built
    once, without data, and asked whether their inputs exist: a missing file is reported now, not
    after the first generation has trained."""
    node = cfg.get("surrogate")
    target = None if node is None else node.get("_target_")
    if not target:
        return
    from hydra.utils import get_class

    try:
        klass = get_class(str(target))
    except Exception:  # noqa: BLE001 - an unknown target is the runner's error to report
        return
    if not callable(getattr(klass, "check_sources", None)):
        return
    try:
        predictor = group_factory(node)(seed=0)
        predictor.check_sources()
    except (ValueError, FileNotFoundError) as err:
        raise InputError(f"surrogate={node.get('name')}: {err}") from None


def resume_command() -> str:
    """This command without ``search.restart=...``: pasted after an interrupt it must resume the
    run, not set it aside and start over again."""
    import shlex

    kept = [arg for arg in sys.argv if not re.fullmatch(r"[+~]*search\.restart(=.*)?", arg)]
    return "python " + shlex.join(kept)


def _where(runner: Any, run_dir: Path) -> str:
    """What Ctrl-C interrupted, and the command that resumes it."""
    resume = f"resume with: {resume_command()}"
    strategy = None if runner is None else getattr(runner, "strategy", None)
    if strategy is None:
        return f"while setting up the search in {run_dir}; to run (or resume) it: {command_line()}"
    return (f"at iteration {strategy.iteration}/{runner.budget} in {run_dir} (trained candidates "
            f"are saved; those in progress are redone); {resume}")


def _user_error(err: Exception) -> None:
    """One line on stderr; exit 1 in a single run, re-raise in a sweep (Hydra marks the job failed
    and goes on with the next)."""
    print(f"search.py: error: {err}", file=sys.stderr, flush=True)
    if single_run():
        sys.exit(1)
    raise err


def main(cfg: DictConfig) -> float | None:
    """Returns the best validation accuracy (for sweepers); exits 1 with a message on errors."""
    run_dir = hydra_run_dir()
    runner = None
    with CtrlC("search.py", lambda: _where(runner, run_dir)):
        try:
            check_inputs(cfg)
        except InputError as err:
            from nas.search.hydra_record import keep_run_config

            keep_run_config(run_dir)  # .hydra/ keeps describing a run already in the directory
            _user_error(err)
        from nas.data import DatasetError
        from nas.search.archive import ArchiveError
        from nas.search.checkpoint import CheckpointError
        from nas.search.runner import SearchError, SearchRunner

        try:
            runner = SearchRunner(cfg, run_dir)
            result = runner.run()
        except (SearchError, CheckpointError, ArchiveError, DatasetError) as err:
            _user_error(err)
    best = result["best"]
    counts = result["candidates"]
    shown = "-" if best is None else f"{best['val_acc']:.4f}"
    print(f"best val_acc={shown} after {result['iterations']} iterations "
          f"({counts['failed']} failed: {counts['failed_by_status']}) in {result['wall_seconds']:.0f}s "
          f"-> {run_dir}/result.json", flush=True)
    return None if best is None else best["val_acc"]
