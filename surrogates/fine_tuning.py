"""Offline fine-tuning of a language-model surrogate (``train.py task=surrogate``, seed_system.md §7.2-7.3).

Two modes, both on architecture-string tables (``surrogates.string_tables``: search runs, sweep
dirs, transfer exports, the paper's CSVs):

- **single task** (``target=null``): train on every row of ``data``; ``eval_data`` (optional) is
  the evaluation set (the paper's ``val.csv``).
- **leave one dataset out** (``target=<dataset>``): train on every other dataset of ``data``, each
  dataset's targets normalised on its own (``surrogate.standardize``: ``ecdf``, the paper's script,
  or ``minmax``); evaluate on every run of the target, raw accuracies, zero rows kept (§7.3).

Training rows with accuracy 0 (failed candidates) are dropped (the paper's ``discard_zero``). The
paper's hyper-parameters: lr 1e-5, weight decay 0.01, 6% warm-up, cosine, batch 2
(``surrogate.offline_batch_size``), 15 epochs per task and 5 leave-one-out
(``surrogate.offline_epochs=null`` picks these).

Model selection. After every epoch the model is scored (Kendall τ, the paper's
``metric_for_best_model``) and the best epoch's weights are kept. By default the score is on a
held-out share (``surrogate.holdout``, 10%) of the *training* rows, so the evaluation set stays
unseen. ``surrogate.select_on_eval=true`` is the paper's choice, selecting on the evaluation set
(which is then also the reported one: optimistic); it trains on every training row.

Output: ``<run dir>/checkpoint/``, a saved predictor (``model/`` with the weights and the
tokenizer, ``predictor.json``) that ``surrogate.checkpoint=<dir>`` and
``evaluate.py task=surrogate checkpoint=<dir>`` load, plus ``info.json`` (arguments, data
sources, per-epoch history, metrics), ``predictions.csv`` and ``predictions.png`` (predicted vs
true). Everything is also logged to the run's logger (W&B).

A fixed place: ``checkpoint_dir=<dir>`` (``train.py``) writes the checkpoint there instead, so that
a pipeline knows where each target's model is (``nas.pipeline``: ``<sweep>/finetuned/lm/<target>``). The
checkpoint is written into ``<dir>.partial-<pid>/`` and renamed to ``<dir>`` when complete
(``info.json`` written last), so ``<dir>`` is never half-written (a killed run leaves its
``.partial-<pid>`` folder, which nothing reads; the next run starts over). If ``<dir>`` already holds a
complete checkpoint (its ``info.json``), nothing is trained or written: the run says so and returns
that checkpoint's info. A ``<dir>`` without ``info.json`` (not ours, or from an older version) is
refused; nothing is ever overwritten.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.search.identity import NOT_SEARCH_KEYS as OFFLINE_KEYS
from surrogates.metrics import rank_metrics
from surrogates.normalisation import canonical_policy, normalise
from surrogates.predictors.tables import ID_COLUMN, TARGET_COLUMN, usable_rows

log = logging.getLogger(__name__)

__all__ = ["OFFLINE_KEYS", "PAPER_EPOCHS", "FineTuneData", "checkpoint_path", "finished_checkpoint", "split_data",
           "fine_tune", "fine_tune_task"]

# OFFLINE_KEYS: the settings of the surrogate config read here, not passed to the model (nor part
# of a search's identity).
PAPER_EPOCHS = {"single": 15, "leave_one_out": 5}  # bert_tuning_task.sh, bert_loo_tuning.py
PAPER_POLICY = {"single": "raw", "leave_one_out": "ecdf"}
# A language-model node's keys that are not constructor arguments: the search's (checkpoint, cadence)
# and the offline fine-tuning's.
NOT_MODEL_KEYS = ("checkpoint", "refit_every", "fit_on_archive", *OFFLINE_KEYS)
CHECKPOINT_DIR = "checkpoint"
_COLUMNS = ["dataset", "seed", ID_COLUMN, "arch", "arch_long", TARGET_COLUMN]


@dataclass
class FineTuneData:
    """The rows of one fine-tuning: ``train`` (normalised targets), ``selection`` (held out from the
    training rows, same scale) and ``evaluation`` (raw, zeros kept); each has ``_COLUMNS``."""

    mode: str
    target: str | None
    policy: str
    train: pd.DataFrame
    selection: pd.DataFrame | None
    evaluation: pd.DataFrame | None
    select_on_eval: bool = False
    sources: list[dict] = field(default_factory=list)

    def selector(self) -> tuple[str | None, pd.DataFrame | None]:
        """The rows the best epoch is chosen on, and their name."""
        if self.selection is not None:
            return "selection", self.selection
        if self.select_on_eval:
            return "evaluation", self.evaluation
        return None, None


def _stack(archive: dict[str, dict[int, pd.DataFrame]]) -> pd.DataFrame:
    frames = [table.assign(dataset=dataset, seed=seed) for dataset, runs in archive.items()
              for seed, table in runs.items()]
    if not frames:
        return pd.DataFrame(columns=_COLUMNS)
    return pd.concat(frames, ignore_index=True)[_COLUMNS]


def split_data(archive: dict[str, dict[int, pd.DataFrame]], target: str | None = None,
               eval_archive: dict[str, dict[int, pd.DataFrame]] | None = None, policy: str | None = None,
               holdout: float = 0.1, select_on_eval: bool = False, seed: int = 0) -> FineTuneData:
    """The training, selection and evaluation rows of a single-task or leave-one-out fine-tuning.

    ``policy`` (None: raw for a single task, ecdf leave-one-out) normalises the training targets
    within each source *dataset* after the zero rows are dropped, as the paper's script does."""
    mode = "single" if target is None else "leave_one_out"
    policy = canonical_policy(PAPER_POLICY[mode] if policy is None else policy)
    if mode == "leave_one_out":
        if target not in archive:
            raise ValueError(f"target={target}: no run of that dataset in the data (datasets: {', '.join(archive)})")
        if eval_archive:
            raise ValueError("leave-one-out evaluates on the target's runs; drop eval_data (or target for a "
                             "single-task fine-tuning)")
        train_archive = {d: runs for d, runs in archive.items() if d != target}
        if not train_archive:
            raise ValueError(f"target={target} is the only dataset in the data: nothing to train on")
        evaluation = _stack({target: archive[target]})
    else:
        train_archive = archive
        evaluation = _stack(eval_archive) if eval_archive else None
    sources = [{"dataset": d, "seed": s, "rows": len(t), "role": "train"} for d, runs in train_archive.items()
               for s, t in runs.items()]
    if evaluation is not None:
        sources += [{"dataset": d, "seed": int(s), "rows": int(n), "role": "evaluation"}
                    for (d, s), n in evaluation.groupby(["dataset", "seed"], sort=False).size().items()]
    train = _stack(train_archive)
    train = train[usable_rows(train[TARGET_COLUMN])].reset_index(drop=True)
    if train.empty:
        raise ValueError("no training row with an accuracy above 0 in the data")
    train[TARGET_COLUMN] = np.concatenate([normalise(rows[TARGET_COLUMN].to_numpy(float), policy)
                                           for _, rows in train.groupby("dataset", sort=False)])
    train = pd.concat([rows for _, rows in train.groupby("dataset", sort=False)], ignore_index=True)
    selection = None
    if select_on_eval:
        if evaluation is None or evaluation.empty:
            raise ValueError("surrogate.select_on_eval=true selects on the evaluation set, and there is none: "
                             "give eval_data=<...> or target=<dataset>, or keep the held-out selection")
    elif holdout > 0:
        if not 0 < holdout < 1:
            raise ValueError(f"surrogate.holdout must be in [0, 1), got {holdout}")
        n_out = max(2, int(round(holdout * len(train))))
        if len(train) - n_out < 1:
            raise ValueError(f"{len(train)} training rows are too few to hold {n_out} out for model selection; "
                             "add data or set surrogate.holdout=0 (no selection: the last epoch)")
        chosen = np.random.default_rng(seed).permutation(len(train))[:n_out]
        mask = np.zeros(len(train), dtype=bool)
        mask[chosen] = True
        selection, train = train[mask].reset_index(drop=True), train[~mask].reset_index(drop=True)
    return FineTuneData(mode, target, policy, train, selection, evaluation, bool(select_on_eval), sources)


def _score(predictor, rows: pd.DataFrame | None) -> tuple[dict[str, float] | None, np.ndarray | None]:
    if rows is None or rows.empty:
        return None, None
    pred = predictor.predict(rows[["arch", "arch_long"]])
    return rank_metrics(pred, rows[TARGET_COLUMN].to_numpy(float)), pred


def fine_tune(predictor, data: FineTuneData, epochs: int, batch_size: int, logger=None,
              progress: bool = True) -> dict[str, Any]:
    """Fine-tune ``predictor`` on ``data.train`` for ``epochs``, keeping the best epoch's weights
    (Kendall τ on the selection rows, or on the evaluation rows with ``select_on_eval``, else the
    last epoch). Returns the history and the chosen epoch."""
    from surrogates.fine_tuning_progress import FineTuneProgress

    name, selector = data.selector()
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": None, "kendall_tau": -np.inf, "weights": None}
    steps_per_epoch = -(-len(data.train) // batch_size)
    bar = FineTuneProgress(steps_per_epoch * epochs, epochs, enabled=progress)

    def after_epoch(epoch: int, loss: float) -> None:
        row = {"epoch": epoch, "train/loss": loss}
        if selector is not None:
            metrics, _ = _score(predictor, selector)
            row.update({f"{name}/{k}": v for k, v in metrics.items()})
            tau = metrics["kendall_tau"]
            if np.isfinite(tau) and tau > best["kendall_tau"]:
                best.update(epoch=epoch, kendall_tau=tau, weights=predictor.weights())
        history.append(row)
        if logger is not None:
            logger.log(row, step=epoch)
        log.info("epoch %d/%d: train loss %.4g%s", epoch, epochs, loss,
                 f", {name} Kendall tau {row[f'{name}/kendall_tau']:.4f}" if selector is not None else "")

    started = time.perf_counter()
    try:
        predictor.fine_tune(data.train[["arch", "arch_long"]], data.train[TARGET_COLUMN].to_numpy(float),
                            epochs=epochs, batch_size=batch_size, after_step=bar.step, after_epoch=after_epoch)
    finally:
        bar.close()
    chosen = epochs
    if best["weights"] is not None and best["epoch"] != epochs:
        predictor.load_weights(best["weights"])
        chosen = best["epoch"]
    return {"history": history, "epoch": chosen, "selected_on": name,
            "seconds": round(time.perf_counter() - started, 2)}


def language_model(surrogate_cfg, seed: int):
    """The predictor a ``conf/surrogate`` language-model node describes (its ``checkpoint``, when
    set, is the weights to start from), for the search and for fine-tuning alike; the keys the
    search and this module read (``NOT_MODEL_KEYS``) are left out."""
    from omegaconf import OmegaConf

    from nas.hydra_utils import group_factory

    node = OmegaConf.to_container(surrogate_cfg, resolve=True) if not isinstance(surrogate_cfg, dict) else dict(surrogate_cfg)
    name = node.get("name")
    checkpoint = node.pop("checkpoint", None)
    for key in NOT_MODEL_KEYS:
        node.pop(key, None)
    factory = group_factory(OmegaConf.create(node))
    if getattr(getattr(factory, "func", factory), "input_kind", "features") != "strings":
        raise ValueError(f"surrogate={name} is not a language model; fine-tuning needs surrogate=lm (offline, "
                         "all-MiniLM-L6-v2) or surrogate=bert (the paper's ModernBERT-large)")
    kwargs = {}
    if checkpoint:
        path = Path(str(checkpoint)).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"surrogate.checkpoint={checkpoint}: no such directory (a saved predictor, "
                                    "e.g. <train run>/checkpoint or <search run>/surrogate/fit-<k>, or a "
                                    "save_pretrained directory)")
        kwargs["model_name_or_path"] = str(path)
    return factory(seed=seed, **kwargs)


def checkpoint_datasets(checkpoint: str | Path) -> set[str]:
    """The datasets a fine-tuned checkpoint was trained on (its ``info.json``; empty if unknown)."""
    info = Path(str(checkpoint)).expanduser() / "info.json"
    if not info.exists():
        return set()
    sources = json.loads(info.read_text()).get("sources", [])
    return {str(s["dataset"]) for s in sources if s.get("role") == "train"}


def _plot(frame: pd.DataFrame, path: Path, title: str) -> None:
    """Predicted against true, one panel per split (selection targets are normalised, evaluation raw)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    splits = list(dict.fromkeys(frame["split"]))
    figure = Figure(figsize=(4.4 * len(splits), 4.2))
    for k, split in enumerate(splits):
        axis = figure.add_subplot(1, len(splits), k + 1)
        rows = frame[frame["split"] == split]
        for dataset, part in rows.groupby("dataset", sort=False):
            axis.scatter(part["true"], part["pred"], s=9, alpha=0.6, label=str(dataset))
        tau = rank_metrics(rows["pred"].to_numpy(float), rows["true"].to_numpy(float))["kendall_tau"]
        axis.set_xlabel("true accuracy" + (" (normalised)" if split == "selection" else ""))
        axis.set_ylabel("predicted")
        axis.set_title(f"{split} ({len(rows)} rows, Kendall tau {tau:.3f})", fontsize=9)
        axis.legend(fontsize=7, loc="best")
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _write_outputs(predictor, data: FineTuneData, result: dict, checkpoint: Path, info: dict, logger) -> dict:
    """Save the predictor, then score it and write predictions.csv, predictions.png and info.json."""
    from nas.logging import atomic_write_text, to_jsonable

    predictor.save(checkpoint)
    metrics, frames = {}, []
    for split, rows in (("selection", data.selection), ("evaluation", data.evaluation)):
        scores, pred = _score(predictor, rows)
        if scores is None:
            continue
        metrics[split] = scores
        frames.append(rows[["dataset", "seed", ID_COLUMN, "arch_long"]].assign(
            split=split, pred=pred, true=rows[TARGET_COLUMN].to_numpy(float)))
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["dataset", "seed", ID_COLUMN, "arch_long", "split", "pred", "true"])
    atomic_write_text(checkpoint / "predictions.csv", predictions.to_csv(index=False))
    if not predictions.empty:
        _plot(predictions, checkpoint / "predictions.png",
              f"{info['mode']}{' -> ' + str(info['target']) if info['target'] else ''}, epoch {result['epoch']}")
    info = {**info, "epoch": result["epoch"], "selected_on": result["selected_on"], "metrics": metrics,
            "history": result["history"], "seconds": result["seconds"],
            "n_truncated": predictor.n_truncated, "n_inputs": predictor.n_inputs}
    atomic_write_text(checkpoint / "info.json", json.dumps(to_jsonable(info), indent=2) + "\n")
    if logger is not None:
        logger.summary({f"{split}/{k}": v for split, values in metrics.items() for k, v in values.items()}
                       | {"epoch": result["epoch"], "n_truncated": predictor.n_truncated})
        logger.table("predictions", predictions.drop(columns=["arch_long"]))
    return info


def checkpoint_path(cfg, run_dir: Path) -> Path:
    """Where ``train.py task=surrogate`` writes: ``checkpoint_dir`` when set, else ``<run_dir>/checkpoint``."""
    fixed = cfg.get("checkpoint_dir")
    return Path(str(fixed)).expanduser() if fixed else Path(run_dir) / CHECKPOINT_DIR


def finished_checkpoint(path: Path) -> dict | None:
    """The ``info.json`` of a complete checkpoint at ``path`` (written last), or None."""
    try:
        return json.loads((Path(path) / "info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def fine_tune_task(cfg, run_dir: Path) -> dict:
    """``train.py task=surrogate``: read the data, fine-tune, write the checkpoint (``checkpoint_path``).

    With ``checkpoint_dir`` set and a complete checkpoint already there, nothing is done: its
    ``info.json`` is returned (``info["kept"] = True``)."""
    from omegaconf import OmegaConf

    from nas.logging import create_logger
    from surrogates.string_tables import load_string_archive

    destination = checkpoint_path(cfg, run_dir)
    if cfg.get("checkpoint_dir"):
        done = finished_checkpoint(destination)
        if done is not None:
            log.info("%s holds a finished fine-tuning (info.json); nothing to do, nothing rewritten", destination)
            return {**done, "kept": True, "checkpoint": str(destination)}
        if destination.exists():
            raise ValueError(f"checkpoint_dir={destination} exists but holds no finished checkpoint (no info.json); "
                             "move it away (nothing is overwritten) or pass another checkpoint_dir")
    if not cfg.get("data"):
        raise ValueError("task=surrogate needs data=<dir or csv> (search run dirs, a sweep dir, a transfer export "
                         "dir with *.strings.csv, or a CSV in the paper's layout; a list: data=[a,b])")
    sur = cfg.surrogate
    seed = int(cfg.get("seed") or 0)
    target = cfg.get("target")
    archive = load_string_archive(_as_list(cfg.data))
    eval_archive = load_string_archive(_as_list(cfg.eval_data)) if cfg.get("eval_data") else None
    data = split_data(archive, None if target is None else str(target), eval_archive, sur.get("standardize"),
                      float(sur.get("holdout", 0.1)), bool(sur.get("select_on_eval", False)), seed)
    epochs = int(sur.get("offline_epochs") or PAPER_EPOCHS[data.mode])
    batch_size = int(sur.get("offline_batch_size") or 2)
    predictor = language_model(sur, seed)
    label = target if target is not None else "single"
    config = OmegaConf.to_container(cfg, resolve=True)
    logger = create_logger(cfg.get("logger"), run_dir=run_dir, job_type="fine_tune",
                           name=f"finetune-{sur.name}-{label}-s{seed}", config=config,
                           tags=["fine_tune", data.mode, str(label)])
    info = {"mode": data.mode, "target": target, "policy": data.policy, "epochs": epochs, "batch_size": batch_size,
            "seed": seed, "model": sur.get("checkpoint") or sur.get("model_name_or_path"),
            "rows": {"train": len(data.train), "selection": 0 if data.selection is None else len(data.selection),
                     "evaluation": 0 if data.evaluation is None else len(data.evaluation)},
            "sources": data.sources, "data": _as_list(cfg.data), "eval_data": _as_list(cfg.get("eval_data")),
            "config": config}
    log.info("fine-tuning %s (%s%s): %d training rows, %d epochs of batch %d", sur.name, data.mode,
             f", target {target}" if target else "", len(data.train), epochs, batch_size)
    fixed = bool(cfg.get("checkpoint_dir"))
    # A fixed place is written whole or not at all: a private folder beside it, renamed at the end.
    writing = destination.with_name(f"{destination.name}.partial-{os.getpid()}") if fixed else destination
    try:
        result = fine_tune(predictor, data, epochs, batch_size, logger, progress=bool(cfg.get("progress", True)))
        info = _write_outputs(predictor, data, result, writing, info, logger)
    finally:
        logger.finish()
    if fixed:
        try:
            os.rename(writing, destination)
        except OSError:  # another job finished the same checkpoint first: keep its, leave ours beside it
            raise ValueError(f"checkpoint_dir={destination} was written by another job meanwhile; kept it, "
                             f"this job's checkpoint is in {writing}") from None
    return {**info, "checkpoint": str(destination)}


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | Path):
        return [str(value)]
    return [str(v) for v in value]
