"""Evaluate one candidate: checks, seeded build, a lean Lightning fit, and a record. Never raises.

Called once per candidate inside one long-lived process (the search runner, train.py, benches):
a fresh ``Trainer`` per candidate (construction costs milliseconds; a reused Trainer would carry
loop state such as ``current_epoch`` into the next fit), data already in memory and on the device,
no logger, checkpointing, progress bar, model summary or sanity check.

Order of work, cheapest rejection first (steps 1-3 are :func:`precheck_candidate`, shared):
1. memory estimate (from the tree, before building) → ``too_large``
2. seeded build + move to the device (errors here are usually ``shape_error``)
3. forward time on one training batch → ``too_slow``: timed (mean of 5 passes, the paper's; on a
   GPU by default) or estimated from the counted forward cost (on a CPU by default: the same
   on any load); ``TrainerConfig.forward_time``
4. ``Trainer.fit`` for ``max_epochs``; evaluation only after the last epoch (the fitness is the
   last-epoch accuracy, so evaluating earlier epochs would only cost time) unless
   ``val_every_n_epochs`` asks for curves. Wall-clock budget → ``too_slow``. A NaN loss stops
   training: with ``nan_policy=previous_epoch`` (the paper's) the fitness is the accuracy after
   the previous epoch (restored from a per-epoch snapshot and evaluated then), ``nan`` in epoch 1;
   with ``nan_policy=fail`` → ``nan``.
Any exception is mapped to a status by :func:`nas.training.record.classify_exception`.
"""
from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from nas.device import resolve_device
from nas.space.cost import forward_cost
from nas.training.callbacks import WallClockBudget
from nas.training.checks import (
    count_parameters,
    estimate_memory_bytes,
    estimated_forward_seconds,
    measure_forward_seconds,
)
from nas.training.config import TrainerConfig
from nas.training.gpu import apply_tf32, warm_up
from nas.training.lightning_setup import IGNORED_WARNINGS, quiet_lightning
from nas.training.module import CandidateModule
from nas.training.record import (
    EvalRecord,
    ForwardTooSlow,
    NonFiniteLossError,
    TooLarge,
    classify_exception,
)

MB = 2**20

def _is_architecture(candidate: Any) -> bool:
    return hasattr(candidate, "long_string") and not isinstance(candidate, nn.Module)


def build_network(candidate: Any, num_classes: int, space: Any = None) -> nn.Module:
    """An ``nn.Module`` from an Architecture (needs ``space``), a module, or a zero-arg factory."""
    if isinstance(candidate, nn.Module):
        return candidate
    if _is_architecture(candidate):
        if space is None:
            raise ValueError("evaluating an Architecture needs the search space (space=...) to build it")
        return space.build(candidate, num_classes)
    if callable(candidate):
        net = candidate()
        if not isinstance(net, nn.Module):
            raise TypeError(f"candidate factory returned {type(net).__name__}, not an nn.Module")
        return net
    raise TypeError(f"cannot build a network from {type(candidate).__name__}")


def make_trainer(
    config: TrainerConfig,
    device: torch.device,
    callbacks: Sequence[L.Callback] = (),
    progress: bool = False,
) -> L.Trainer:
    """The lean per-candidate Trainer (flags from ecosystem.md §4.2)."""
    return L.Trainer(
        accelerator="gpu" if device.type == "cuda" else device.type,
        devices=[device.index or 0] if device.type == "cuda" else 1,
        precision=config.precision,
        max_epochs=config.max_epochs,
        check_val_every_n_epoch=config.check_val_every_n_epoch,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=config.deterministic,
        callbacks=list(callbacks),
    )


def evaluate_candidate(
    candidate: Any,
    datamodule: Any,
    config: TrainerConfig | Any = None,
    *,
    space: Any = None,
    seed: int = 0,
    data_seed: int | None = None,
    callbacks: Sequence[L.Callback] = (),
    progress: bool = False,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> EvalRecord:
    """Train and score one candidate; return an :class:`EvalRecord`. Never raises ``Exception``.

    Args:
        candidate: an ``Architecture`` (built with ``space.build``), an ``nn.Module`` or a
            zero-argument callable returning one (built after seeding, so its init is seeded).
        datamodule: an in-memory LightningDataModule (``nas.data``): ``setup()``,
            ``train_dataloader()``/``val_dataloader()`` (search mode) or
            ``trainval_dataloader()``/``test_dataloader()`` (final mode), ``example_batch(n)``,
            ``batch_size``, ``num_classes``.
        config: :class:`TrainerConfig`, a mapping of its fields, or None for the search defaults.
        space: the search space; builds Architectures and estimates their memory.
        seed: seeds python/numpy/torch right before the build, so the same candidate, data and
            seed give the same accuracy (bit-identical on CPU).
        data_seed: when given, re-seeds the datamodule's shuffle order first
            (``datamodule.set_epoch_seed``); otherwise the datamodule's own ``seed`` decides it.
        callbacks: extra Lightning callbacks (e.g. a progress bar for train.py).
        progress: show Lightning's progress bar (off for search candidates).
        on_epoch_end: called with each epoch's history row (train.py logs it).

    ``KeyboardInterrupt``/``SystemExit`` are not failures of the candidate and propagate.
    """
    quiet_lightning()
    with warnings.catch_warnings():
        for pattern in IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        return _evaluate(candidate, datamodule, config, space, seed, data_seed, callbacks, progress, on_epoch_end)


def _evaluate(candidate, datamodule, config, space, seed, data_seed, callbacks, progress, on_epoch_end):
    t_start = time.perf_counter()
    record = EvalRecord(seed=seed)
    net: nn.Module | None = None
    module: CandidateModule | None = None
    trainer: L.Trainer | None = None
    t_fit: float | None = None
    try:
        cfg = TrainerConfig.from_any(config)
        device = resolve_device(cfg.accelerator)
        record.device = device.type
        apply_tf32(cfg.tf32, device)
        datamodule.setup()
        if data_seed is not None:
            datamodule.set_epoch_seed(int(data_seed))
        # 1-3. the pre-training limits (memory estimate, seeded build, forward time).
        net = _precheck(candidate, datamodule, cfg, space, seed, device, record)

        # 4. train, then score after the last epoch.
        final = cfg.mode == "final"
        module = CandidateModule(
            net,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            max_epochs=cfg.max_epochs,
            eval_name="test" if final else "val",
            on_epoch_end=on_epoch_end,
            keep_previous_epoch=cfg.nan_policy == "previous_epoch",
        )
        all_callbacks = list(callbacks)
        budget = cfg.time_budget_for(device.type)
        if budget is not None:
            all_callbacks.append(WallClockBudget(budget, start=t_start))
        trainer = make_trainer(cfg, device, all_callbacks, progress)
        train_loader = datamodule.trainval_dataloader() if final else datamodule.train_dataloader()
        eval_loader = datamodule.test_dataloader() if final else datamodule.val_dataloader()
        t_fit = time.perf_counter()
        try:
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=eval_loader)
        except NonFiniteLossError as nan:
            record.nan_epoch = nan.epoch
            if cfg.nan_policy == "fail":
                raise
            accuracy, record.reason = _score_previous_epoch(module, trainer, eval_loader, nan)
        else:
            if not module.history or len(module.history) < cfg.max_epochs:
                raise RuntimeError(f"training stopped after {len(module.history)} of {cfg.max_epochs} epochs")
            if not module._evaluated_this_epoch:  # val_every_n_epochs does not divide max_epochs
                trainer.validate(module, dataloaders=eval_loader, verbose=False)
                module.history[-1][f"{module.eval_name}_acc"] = module.eval_acc
            accuracy = module.eval_acc
        record.train_s = time.perf_counter() - t_fit
        if final:
            record.test_acc = accuracy
        else:
            record.val_acc = accuracy
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record
        record.status, record.reason = classify_exception(exc)
        record.val_acc = record.test_acc = None
    finally:
        if module is not None:
            record.history = list(module.history)
            record.epochs = len(module.history)
            if module.history:
                record.train_loss = module.history[-1].get("train_loss")
        if t_fit is not None and record.train_s is None:
            record.train_s = time.perf_counter() - t_fit  # time trained before the failure
        record.seconds = time.perf_counter() - t_start
        # GPU memory: Lightning's teardown (end of fit, also after an exception inside fit) moves
        # the model and optimizer state to the CPU; what remains is CPU objects in reference
        # cycles (Trainer internals) that the cyclic GC frees later. A full gc.collect() costs
        # ~0.25 s with torch + Lightning loaded, so it runs only after an out-of-memory failure,
        # to hand the memory back before the next candidate.
        del trainer, module, net
        if record.status == "oom":
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return record


def _score_previous_epoch(
    module: CandidateModule, trainer: L.Trainer, eval_loader: Any, nan: NonFiniteLossError
) -> tuple[float, str]:
    """``nan_policy="previous_epoch"``: the accuracy the paper keeps after a NaN loss, and a reason.

    The paper validates after every epoch and, at a NaN, keeps the last score: that of the epoch
    before the NaN, or its initial 0.0 in epoch 1 (a failure in its search), which is raised
    here as status ``nan``. The accuracy is the one of that epoch's evaluation when there was
    one (``val_every_n_epochs``), otherwise the restored end-of-epoch snapshot is evaluated now
    on the same split and loader. It is written into that epoch's history row.
    """
    where = f"non-finite training loss ({nan.loss}) at epoch {nan.epoch}, step {nan.step}"
    epoch, accuracy = module.rewind_to_previous_epoch()
    if epoch == 0:
        raise NonFiniteLossError(
            f"{where}: no completed epoch to score (the paper's fitness 0.0)",
            epoch=nan.epoch, step=nan.step, loss=nan.loss,
        )
    if len(module.history) != epoch or nan.epoch != epoch + 1:
        raise RuntimeError(f"{where}, but {len(module.history)} epochs are recorded and the snapshot is "
                           f"of epoch {epoch}")
    if accuracy is None:
        trainer.validate(module, dataloaders=eval_loader, verbose=False)
        accuracy = module.eval_acc
    name = f"{module.eval_name}_acc"
    module.history[epoch - 1][name] = accuracy
    return accuracy, f"{where}: {name} is that after epoch {epoch} (nan_policy=previous_epoch)"


def precheck_candidate(
    candidate: Any,
    datamodule: Any,
    config: TrainerConfig | Any = None,
    *,
    space: Any = None,
    seed: int = 0,
) -> EvalRecord | None:
    """Apply the pre-training limits exactly as :func:`evaluate_candidate` does, without training.

    In order: the memory estimate (from the tree, before building) → ``too_large``; the seeded
    build on the trainer's device → usually ``shape_error`` when it fails; the forward-time check
    on one training batch → ``too_slow`` (and, for a plain module, the memory estimate measured
    on the built network). Both functions run the same code (``_precheck``), so they cannot
    disagree. Returns ``None`` when the candidate passes, else the failure :class:`EvalRecord`
    (``status``, ``reason`` naming the override that lifts the limit, ``memory_mb``,
    ``forward_s`` as far as measured). Never raises for a failing candidate.

    Cheap: no Trainer; at most one build and ``config.forward_passes`` forward passes. The
    global RNG states (python, numpy, torch, CUDA; the build is seeded with ``seed``) are
    restored afterwards, so calling it does not change what a search draws next.
    """
    quiet_lightning()
    t_start = time.perf_counter()
    record = EvalRecord(seed=seed)
    net: nn.Module | None = None
    saved = _rng_state()
    try:
        with warnings.catch_warnings():
            for pattern in IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            cfg = TrainerConfig.from_any(config)
            device = resolve_device(cfg.accelerator)
            record.device = device.type
            apply_tf32(cfg.tf32, device)
            datamodule.setup()
            net = _precheck(candidate, datamodule, cfg, space, seed, device, record)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record
        record.status, record.reason = classify_exception(exc)
    finally:
        del net
        _restore_rng_state(saved)
        record.seconds = time.perf_counter() - t_start
        if record.status == "oom":
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return None if record.status == "ok" else record


def _precheck(candidate: Any, datamodule: Any, cfg: TrainerConfig, space: Any, seed: int,
              device: torch.device, record: EvalRecord) -> nn.Module:
    """Steps 1-3 of an evaluation (the pre-training limits); fills ``record`` and returns the
    seeded network on ``device``, or raises (``TooLarge``, ``ForwardTooSlow``, build errors)."""
    batch_size = int(datamodule.batch_size)
    limit_mb = cfg.memory_limit_for(space)

    # 1. memory estimate from the tree: no network is built for a too-large candidate.
    if _is_architecture(candidate):
        record.num_params = _int_or_none(getattr(candidate, "num_params", None))
        if space is not None and hasattr(space, "memory_bytes"):
            estimate = float(space.memory_bytes(candidate, batch_size))
            record.memory_mb = estimate / MB
            _check_memory(estimate, limit_mb, batch_size)

    # 2. seeded build.
    t0 = time.perf_counter()
    L.seed_everything(int(seed), verbose=False)
    net = build_network(candidate, int(datamodule.num_classes), space).to(device)
    record.build_s = time.perf_counter() - t0
    record.num_params_total = count_parameters(net)
    if record.num_params is None:
        record.num_params = record.num_params_total

    # 3. forward-time check on one training batch (and the generic memory estimate).
    x, _ = datamodule.example_batch(batch_size)
    x = x.to(device)
    if limit_mb is not None and record.memory_mb is None:
        estimate = float(estimate_memory_bytes(net, x[:2], batch_size))
        record.memory_mb = estimate / MB
        _check_memory(estimate, limit_mb, batch_size)
    forward_limit = cfg.forward_limit_for(device.type)
    if forward_limit is None:
        return net
    if cfg.forward_time_for(device.type) == "estimated":
        cost = forward_cost(net, x[:2])
        record.forward_s = estimated_forward_seconds(cost, x.shape[0])
        if record.forward_s >= forward_limit:
            raise ForwardTooSlow(
                f"estimated forward time {record.forward_s:.3f} s per batch of {x.shape[0]} "
                f"({cost.multiply_adds / 1e6:.1f} M multiply-adds, {cost.activation_elements / 1e3:.0f} k "
                f"activation elements per sample) >= limit {forward_limit:g} s "
                f"(trainer.forward_time=measured times it instead; trainer.forward_time_limit_s=null lifts it)")
        return net
    warm_up(device)  # the process's first CUDA work is not the candidate's forward time
    record.forward_s, _ = measure_forward_seconds(net, x, cfg.forward_passes, forward_limit)
    if record.forward_s >= forward_limit:
        raise ForwardTooSlow(
            f"mean forward time {record.forward_s:.3f} s per batch of {x.shape[0]} "
            f">= limit {forward_limit:g} s on {device.type} "
            f"(trainer.forward_time_limit_s=null lifts it)"
        )
    return net


def _check_memory(estimate_bytes: float, limit_mb: float | None, batch_size: int) -> None:
    if limit_mb is not None and estimate_bytes > limit_mb * MB:
        raise TooLarge(
            f"estimated training memory {estimate_bytes / MB:.0f} MB at batch {batch_size} "
            f"> limit {limit_mb:.0f} MB (space.mem_limit_mb; trainer.memory_limit_mb=null lifts it)"
        )


def _rng_state() -> tuple:
    import os
    import random

    import numpy as np

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return (random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda,
            os.environ.get("PL_GLOBAL_SEED"))


def _restore_rng_state(state: tuple) -> None:
    import os
    import random

    import numpy as np

    python, numpy, cpu, cuda, pl_seed = state
    random.setstate(python)
    np.random.set_state(numpy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
    if pl_seed is None:
        os.environ.pop("PL_GLOBAL_SEED", None)
    else:
        os.environ["PL_GLOBAL_SEED"] = pl_seed


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
