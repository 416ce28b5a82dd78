"""Which architecture ``train.py`` trains: a seed name, an architecture string (or ``@file``), or
the best ``ok`` entry of a search run's archive; and train.py's checks before torch's heavy
companions (Lightning) are imported.

Only the search space (and torch) is imported here, so ``train.py`` reports a bad seed, an
unreadable ``arch=@file`` or an architecture string that does not parse within seconds, before
it imports Lightning or touches the data. :mod:`nas.training.cli` re-exports these names.
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from nas.validation import InputError, check_seed, read_architecture_file

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_SHOW = 60  # characters of a bad name echoed back


class ArchitectureError(ValueError):
    """The requested architecture cannot be resolved (bad string, unknown seed, empty archive)."""


def best_archive_entry(run_dir: str | Path) -> dict[str, Any]:
    """The best ``ok`` entry of ``<run_dir>/archive.jsonl`` (highest ``val_acc``, earliest on ties).

    Lines that are not JSON objects (e.g. a torn last line after a crash) are skipped with a warning.
    """
    from nas.search.archive import read_archive

    path = Path(run_dir) / "archive.jsonl"
    if not path.is_file():
        raise ArchitectureError(f"no archive at {path} (run= must be a search run directory)")
    best: dict[str, Any] | None = None
    for entry in read_archive(path, warn=True):
        acc, arch = entry.get("val_acc"), entry.get("arch")
        if entry.get("status", "ok") != "ok" or not isinstance(acc, (int, float)) or not isinstance(arch, str):
            continue
        if best is None or acc > best["val_acc"]:
            best = entry
    if best is None:
        raise ArchitectureError(f"{path} holds no candidate with status 'ok' and a val_acc")
    return best


RUN_GROUPS = ("dataset", "space")  # what train.py run=<dir> takes from the run


def run_settings(run_dir: Path) -> dict[str, Any] | None:
    """The dataset and space configs a search run used: its ``experiment.json`` (written when the
    run was accepted), else its ``.hydra/config.yaml``; None when it has neither."""
    experiment = run_dir / "experiment.json"
    try:
        if experiment.is_file():
            saved = json.loads(experiment.read_text(encoding="utf-8"))
        elif (run_dir / ".hydra" / "config.yaml").is_file():
            saved = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"), resolve=True)
        else:
            return None
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(f"run={run_dir}: cannot read its saved config ({type(err).__name__}: {err}); "
                         "pass arch=@<file with the architecture string> to train it without the run") from None
    if not all(isinstance(saved.get(group), dict) for group in RUN_GROUPS):
        return None
    return {group: saved[group] for group in RUN_GROUPS}


def _explicit_overrides() -> list[str]:
    """The command line's overrides (empty outside a Hydra job, e.g. with the Compose API)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def with_run_settings(cfg: DictConfig) -> DictConfig:
    """``train.py run=<dir>`` trains the run's best architecture on the run's own dataset and
    space: their configs are taken from the run's saved config. A command that overrides either
    differently is refused (the architecture was found, and its limits set, for the run's); a run
    dir without a saved config (an archive alone) keeps the command's, with a warning."""
    run = cfg.get("run")
    if run in (None, ""):
        return cfg
    run_dir = Path(str(run)).expanduser()
    saved = run_settings(run_dir)
    if saved is None:
        warnings.warn(f"{run_dir} has no saved config (experiment.json or .hydra/config.yaml): training on "
                      f"the command's dataset {OmegaConf.select(cfg, 'dataset.name')!r} and space", stacklevel=2)
        return cfg
    current = {group: OmegaConf.to_container(cfg[group], resolve=True) for group in RUN_GROUPS}
    overridden = [o for o in _explicit_overrides() if re.match(r"[+~]*(dataset|space)([.=]|$)", o)]
    if overridden and current != saved:
        raise InputError(
            f"run={run_dir} searched on dataset {saved['dataset'].get('name')!r} with its own space settings, "
            f"and train.py retrains its best architecture on those; drop {' '.join(overridden)} "
            "(to train the architecture elsewhere, save its string to a file and pass arch=@<file>)")
    cfg = cfg.copy()
    with open_dict(cfg):
        for group in RUN_GROUPS:
            cfg[group] = OmegaConf.create(saved[group])
    return cfg


def resolve_architecture(space: Any, arch: str | None = None, run: str | None = None,
                         dataset_name: str | None = None) -> tuple[Any, dict[str, Any]]:
    """``(Architecture, source)`` for a seed name, an architecture string, or a search run dir.

    ``arch`` may also be ``@<path>``: the architecture string is read from that file, which
    avoids quoting long strings for the shell and for Hydra's override grammar.
    """
    from nas.space import ParseError

    if run not in (None, ""):
        run_dir = Path(str(run)).expanduser()
        entry = best_archive_entry(run_dir)
        try:
            architecture = space.parse(entry["arch"])
        except ParseError as exc:
            raise ArchitectureError(f"{run_dir}/archive.jsonl: cannot parse the best architecture: {exc}") from None
        source = {"kind": "run", "run": str(run_dir), "iteration": entry.get("iteration"),
                  "search_val_acc": entry.get("val_acc")}
        return architecture, source

    text = "" if arch is None else str(arch).strip()
    if text.startswith("@"):  # arch=@file.txt: the string is in a file (no shell/Hydra quoting)
        try:
            text = read_architecture_file(text[1:])
        except InputError as exc:
            raise ArchitectureError(str(exc)) from None
    if not text:
        raise ArchitectureError("no architecture given: pass arch=<seed name or string> or run=<search run dir>")
    seeds = list(space.seed_names())
    if text in seeds:
        return space.seed(text), {"kind": "seed", "name": text}
    try:
        architecture = space.parse(text)
    except ParseError as exc:
        if _NAME.match(text):
            shown = repr(text) if len(text) <= _SHOW else f"{text[:_SHOW]!r}... ({len(text)} characters)"
            raise ArchitectureError(
                f"unknown seed architecture {shown}; known seeds: {', '.join(seeds)} "
                "(or pass an architecture string)"
            ) from None
        raise ArchitectureError(f"cannot parse arch: {exc}") from None
    return architecture, {"kind": "string"}


def check_train_inputs(cfg: DictConfig) -> None:
    """train.py's checks before Lightning and the data: the seed, then the architecture (which
    builds the search space, and reads ``arch=@file`` or ``run``'s archive). Raises
    :class:`nas.validation.InputError` or :class:`ArchitectureError`; warnings are left for the
    real resolution in :func:`nas.training.cli.train`."""
    check_seed(cfg.get("seed"))
    arch, run = cfg.get("arch"), cfg.get("run")
    if run in (None, "") and isinstance(arch, str) and arch.strip().startswith("@"):
        read_architecture_file(arch.strip()[1:])  # an unreadable file before torch is imported
    from hydra.utils import instantiate

    space = instantiate(with_run_settings(cfg).space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resolve_architecture(space, arch, run, OmegaConf.select(cfg, "dataset.name"))
