"""What ``train.py`` does: pick an architecture, train it once, write ``result.json``.

``train.py`` itself is only the Hydra entry point. Here:

- :func:`resolve_architecture` (in :mod:`nas.architecture_input`, re-exported here) turns ``arch`` (a seed name or an architecture string) or ``run``
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
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nas.architecture_input import (  # noqa: F401 - best_archive_entry and ArchitectureError: re-exported
    ArchitectureError,
    best_archive_entry,
    resolve_architecture,
    with_run_settings,
)
from nas.data import DatasetError
from nas.hydra_utils import CtrlC, command_line, hydra_run_dir, single_run
from nas.logging import atomic_write_text, create_logger, to_jsonable
from nas.training.callbacks import epoch_metrics
from nas.training.config import TrainerConfig
from nas.training.evaluate import evaluate_candidate
from nas.validation import InputError, check_seed


def train(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train the configured architecture once; write and return the ``result.json`` content.

    Bad input (seed, architecture, dataset files) raises before the logger starts or anything
    is written: :class:`nas.validation.InputError`, :class:`ArchitectureError`,
    :class:`nas.data.DatasetError`."""
    from hydra.utils import instantiate

    seed = check_seed(cfg.get("seed"))
    cfg = with_run_settings(cfg)  # run=<dir>: the run's own dataset and space
    run_dir = Path(run_dir) if run_dir is not None else hydra_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer_cfg = TrainerConfig.from_any(instantiate(cfg.trainer))
    space = instantiate(cfg.space)
    dataset_name = OmegaConf.select(cfg, "dataset.name")
    architecture, source = resolve_architecture(space, cfg.get("arch"), cfg.get("run"), dataset_name)
    datamodule = instantiate(cfg.dataset)
    datamodule.setup()  # a missing or malformed file is the user's error, not a candidate status

    config = OmegaConf.to_container(cfg, resolve=True)
    metric = "test_acc" if trainer_cfg.mode == "final" else "val_acc"
    label = source.get("name") or ("best-of-run" if source["kind"] == "run" else "string")
    run_logger = create_logger(
        cfg.get("logger"),
        run_dir=run_dir,
        job_type="train",
        name=f"train-{dataset_name}-{label}-{trainer_cfg.mode}-s{seed}",
        config=config,
        tags=[str(dataset_name), trainer_cfg.mode],
    )
    try:
        record = evaluate_candidate(
            architecture,
            datamodule,
            trainer_cfg,
            space=space,
            seed=seed,
            data_seed=seed,
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
            "seed": seed,
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
    """The Hydra task: clean user errors, a one-line summary, the accuracy for sweepers.

    Ctrl-C prints one line and exits with status 130; no ``result.json`` is written."""
    with CtrlC("train.py", lambda: f"(no result.json written; train.py does not resume: rerun it to "
                                   f"start over: {command_line()})"):
        try:
            result = train(cfg)
        except (ArchitectureError, InputError, DatasetError) as exc:
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
