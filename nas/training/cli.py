"""What ``train.py`` does: pick an architecture, train it once, write ``result.json``.

``train.py`` itself is only the Hydra entry point. Here:

- :func:`resolve_architecture` turns ``arch`` (a seed name or an architecture string) or ``run``
  (a search run directory: the best ``ok`` entry of its ``archive.jsonl``) into an Architecture,
  raising :class:`ArchitectureError` with a one-line, user-facing message otherwise;
- :func:`train` instantiates dataset, space, trainer settings and logger from the composed config,
  evaluates the architecture with :func:`nas.training.evaluate_candidate` (progress bar on), and
  writes ``result.json`` atomically into the run directory;
- :func:`main` is the body of the Hydra task: clean exits for user errors (no traceback), exit
  status 1 for a failed candidate in a single run, the accuracy as return value for sweepers.
"""
from __future__ import annotations

import json
import re
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nas.hydra_utils import hydra_run_dir, single_run
from nas.logging import atomic_write_text, create_logger, to_jsonable
from nas.training.callbacks import epoch_metrics
from nas.training.config import TrainerConfig
from nas.training.evaluate import evaluate_candidate

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class ArchitectureError(ValueError):
    """The requested architecture cannot be resolved (bad string, unknown seed, empty archive)."""


def best_archive_entry(run_dir: str | Path) -> dict[str, Any]:
    """The best ``ok`` entry of ``<run_dir>/archive.jsonl`` (highest ``val_acc``, earliest on ties).

    Lines that are not JSON objects (e.g. a torn last line after a crash) are skipped with a warning.
    """
    path = Path(run_dir) / "archive.jsonl"
    if not path.is_file():
        raise ArchitectureError(f"no archive at {path} (run= must be a search run directory)")
    best: dict[str, Any] | None = None
    skipped = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if not isinstance(entry, dict) or entry.get("status", "ok") != "ok":
                continue
            acc, arch = entry.get("val_acc"), entry.get("arch")
            if not isinstance(acc, (int, float)) or not isinstance(arch, str):
                continue
            if best is None or acc > best["val_acc"]:
                best = entry
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} unreadable line(s)", stacklevel=2)
    if best is None:
        raise ArchitectureError(f"{path} holds no candidate with status 'ok' and a val_acc")
    return best


def _search_dataset(run_dir: Path) -> str | None:
    """The dataset name a search run used, from its saved Hydra config (if there is one)."""
    for candidate in (run_dir / ".hydra" / "config.yaml", run_dir / "config.yaml"):
        if candidate.is_file():
            try:
                name = OmegaConf.select(OmegaConf.load(candidate), "dataset.name")
            except Exception:  # noqa: BLE001 - best effort: only used for a warning
                return None
            return None if name is None else str(name)
    return None


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
        searched_on = _search_dataset(run_dir)
        if searched_on is not None and dataset_name is not None and searched_on != dataset_name:
            warnings.warn(
                f"the search run used dataset {searched_on!r} but you are training on "
                f"{dataset_name!r} (pass dataset={searched_on} to retrain on the search data)",
                stacklevel=2,
            )
        try:
            architecture = space.parse(entry["arch"])
        except ParseError as exc:
            raise ArchitectureError(f"{run_dir}/archive.jsonl: cannot parse the best architecture: {exc}") from None
        source = {"kind": "run", "run": str(run_dir), "iteration": entry.get("iteration"),
                  "search_val_acc": entry.get("val_acc")}
        return architecture, source

    text = "" if arch is None else str(arch).strip()
    if text.startswith("@"):  # arch=@file.txt: the string is in a file (no shell/Hydra quoting)
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ArchitectureError(f"cannot read the architecture file {path}: {exc.strerror}") from None
    if not text:
        raise ArchitectureError("no architecture given: pass arch=<seed name or string> or run=<search run dir>")
    seeds = list(space.seed_names())
    if text in seeds:
        return space.seed(text), {"kind": "seed", "name": text}
    try:
        architecture = space.parse(text)
    except ParseError as exc:
        if _NAME.match(text):
            raise ArchitectureError(
                f"unknown seed architecture {text!r}; known seeds: {', '.join(seeds)} "
                "(or pass an architecture string)"
            ) from None
        raise ArchitectureError(f"cannot parse arch: {exc}") from None
    return architecture, {"kind": "string"}


def train(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train the configured architecture once; write and return the ``result.json`` content."""
    from hydra.utils import instantiate

    run_dir = Path(run_dir) if run_dir is not None else hydra_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer_cfg = TrainerConfig.from_any(instantiate(cfg.trainer))
    space = instantiate(cfg.space)
    dataset_name = OmegaConf.select(cfg, "dataset.name")
    architecture, source = resolve_architecture(space, cfg.get("arch"), cfg.get("run"), dataset_name)
    datamodule = instantiate(cfg.dataset)

    config = OmegaConf.to_container(cfg, resolve=True)
    metric = "test_acc" if trainer_cfg.mode == "final" else "val_acc"
    label = source.get("name") or ("best-of-run" if source["kind"] == "run" else "string")
    run_logger = create_logger(
        cfg.get("logger"),
        run_dir=run_dir,
        job_type="train",
        name=f"train-{dataset_name}-{label}-{trainer_cfg.mode}-s{cfg.seed}",
        config=config,
        tags=[str(dataset_name), trainer_cfg.mode],
    )
    try:
        record = evaluate_candidate(
            architecture,
            datamodule,
            trainer_cfg,
            space=space,
            seed=int(cfg.seed),
            data_seed=int(cfg.seed),
            progress=True,
            on_epoch_end=lambda row: run_logger.log(epoch_metrics(row), step=row["epoch"]),
        )
        result = {
            "status": record.status,
            "reason": record.reason,
            "metric": metric,
            metric: getattr(record, metric),
            "dataset": dataset_name,
            "mode": trainer_cfg.mode,
            "epochs": record.epochs,
            "seed": int(cfg.seed),
            "seconds": record.seconds,
            "device": record.device,
            "arch": {
                "long": architecture.long_string,
                "short": architecture.short_string,
                "num_params": record.num_params,
                "source": source,
            },
            "record": record.to_dict(),
            "config": config,
            "run_dir": str(run_dir),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        result = to_jsonable(result)
        atomic_write_text(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
        run_logger.summary({
            "status": record.status,
            f"{metric.split('_')[0]}/acc": getattr(record, metric),
            "seconds": record.seconds,
            "num_params": record.num_params,
            "epochs": record.epochs,
        })
    finally:
        run_logger.finish()
    return result


def main(cfg: DictConfig) -> float | None:
    """The Hydra task: clean user errors, a one-line summary, the accuracy for sweepers."""
    try:
        result = train(cfg)
    except ArchitectureError as exc:
        raise SystemExit(f"train.py: error: {exc}") from None
    metric = result["metric"]
    value = result.get(metric)
    shown = "-" if value is None else f"{value:.4f}"
    line = (f"{result['status']}  {metric}={shown}  epochs={result['epochs']}  "
            f"{result['seconds']:.1f}s  params={result['arch']['num_params']}  "
            f"-> {result['run_dir']}/result.json")
    print(f"{line}\n  reason: {result['reason']}" if result["reason"] else line, flush=True)  # also ok after a NaN
    if result["status"] != "ok" and single_run():
        sys.exit(1)
    return value
