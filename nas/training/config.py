"""Typed trainer settings: the paper's fitness protocol plus our resource limits.

``conf/trainer/{search,final}.yaml`` instantiate :class:`TrainerConfig` via ``_target_``, so a
misspelt key fails at start-up instead of being silently ignored. The batch size is not here: it
belongs to the dataset (``dataset.batch_size``, 256 as in the paper), which owns the loaders.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Limits used when a field is "auto", per device type. GPU values: the paper's forward-time
# limit (mean of 5 forward passes of one training batch of 256, grad enabled, >= 0.1 s rejected;
# seed_system.md §1.5) and a safety-net budget the paper's limits never reach on the Unseen-NAS
# datasets (0.1 s x ~3 for forward+backward x 176 steps x 16 epochs ~ 850 s). The paper has no
# wall-clock budget, so on a GPU this must not bind for candidates the paper would train.
# CPU values (one thread is ~100-1000x slower than an H100, so the paper's 0.1 s means nothing):
# a training step costs ~3 forward passes, so a candidate at the limit L trains 16 epochs of the
# default dataset (16 steps) in ~768 L seconds (measured: forward 0.469 s -> 393 s). L = 0.5 s
# keeps that under ~6.5 min and inside the 600 s budget; it accepts the resnet18 seed (0.33 s)
# and 38 of 40 random samples (median forward ~5-15 ms), and rejects the heavy tail (and, on one
# thread, the wideresnet16_4/vit/mlpmixer seeds: 0.8/1.8/1.5 s), which would cost 10-25 min each.
# On a CPU the limit applies by default to the ESTIMATED forward time (FORWARD_TIMES below), which
# decides alike for these seeds (estimated resnet18 0.38 s, the others 0.6-1.7 s).
# Measured at 3x16x16, batch 256, one thread (bench/training.py). For faster CPU searches use
# trainer.forward_time_limit_s=0.1 (worst case ~77 s per candidate); null trains anything.
AUTO_LIMITS: dict[str, dict[str, float]] = {
    "cuda": {"forward_time_limit_s": 0.1, "time_budget_s": 3600.0},
    "cpu": {"forward_time_limit_s": 0.5, "time_budget_s": 600.0},
}
GPU_FORWARD_TIME_LIMIT_S = AUTO_LIMITS["cuda"]["forward_time_limit_s"]
CPU_FORWARD_TIME_LIMIT_S = AUTO_LIMITS["cpu"]["forward_time_limit_s"]
# How the forward time is judged: "measured" times it (the paper's wall clock; it depends on the
# machine's load), "estimated" derives it from the counted forward cost at a reference one-thread
# CPU rate (nas.training.checks.estimated_forward_seconds; the same on any load, so CPU runs are
# bit-identical however busy the machine is). "auto": measured on a GPU, estimated on a CPU.
FORWARD_TIMES = ("auto", "measured", "estimated")

MODES = ("search", "final")
NAN_POLICIES = ("previous_epoch", "fail")


@dataclass
class TrainerConfig:
    """How one candidate is trained and scored.

    Fitness protocol (the paper's, seed_system.md §4.1; do not change for comparable numbers):
        SGD(lr, momentum, weight_decay), CosineAnnealingLR(T_max=max_epochs) stepped once per
        epoch, cross-entropy, fitness = accuracy on the evaluation split after the LAST epoch.

    Attributes:
        max_epochs: training epochs (16 in search, 64 for the final retraining).
        mode: ``search`` fits on train and scores on valid (``val_acc``); ``final`` fits on
            train+valid and scores on test (``test_acc``), as the paper's test.py does.
        val_every_n_epochs: evaluate every n epochs (per-epoch curves for train.py). ``None``
            evaluates only after the last epoch, which is all the fitness needs and saves
            (epochs-1) passes over the validation set per candidate.
        nan_policy: what a non-finite (NaN/inf) training loss gives; training stops at it in
            both cases (the backward pass of that step is not run).
            ``previous_epoch`` (the paper's, seed_system.md §4.1): the fitness is the accuracy on
            the evaluation split (valid in search mode, test in final mode) of the model as it
            was after the last completed epoch, i.e. what the paper, which validates every epoch,
            had last measured; status ``ok``, ``reason`` says so, ``EvalRecord.nan_epoch`` is set.
            It is measured only when a NaN happens: each epoch start copies the parameters and
            buffers (on the device, no RNG used), which is restored and evaluated then, unless
            that epoch was evaluated anyway (``val_every_n_epochs``). A NaN in epoch 1 leaves
            nothing to score (the paper's 0.0, a failure in its search): status ``nan``.
            ``fail``: status ``nan`` at any epoch (no copy is kept).
        accelerator: Lightning accelerator (``auto``: the GPU when there is one).
        precision: Lightning precision (``32-true`` as in the paper).
        deterministic: ``torch.use_deterministic_algorithms`` via Lightning; only needed for
            bit-identical GPU runs (CPU runs are deterministic without it), and slower.
        forward_time_limit_s: reject a candidate (``too_slow``) whose mean forward time over
            ``forward_passes`` passes of one training batch is >= this. ``"auto"``: 0.1 s on a GPU
            (the paper) and 0.5 s on a CPU (see ``AUTO_LIMITS``); a number: that limit on any
            device; ``None``: no check.
            The limit is in seconds of the forward time as ``forward_time`` judges it.
        forward_time: how the forward time is judged. ``measured``: the mean wall-clock time of
            ``forward_passes`` passes (the paper's; it grows with the machine's load, so a busy
            machine rejects more candidates). ``estimated``: the seconds a reference one-thread
            CPU takes, from the counted multiply-adds and activation elements of one pass
            (``nas.space.cost``, ``nas.training.checks.estimated_forward_seconds``; rank
            correlation 0.98 with the timed pass, bench/forward_cost.py): the same on any load
            and any machine, and an ``"auto"`` limit is then the CPU one on any device.
            ``"auto"`` (default): measured on a GPU, estimated on a CPU.
        forward_passes: number of timed forward passes (5 in the paper).
        memory_limit_mb: reject a candidate (``too_large``) whose estimated peak memory of one
            training step at the dataset's batch size exceeds this many MB (replaces the paper's
            machine-dependent process-RSS checks; seed_system.md §10.20). ``"auto"`` (default):
            the search space's own limit, ``space.cfg.mem_limit_mb`` (the one memory limit of the
            project; ``nas.space.config.MEM_LIMIT_MB`` when no space is given), so sampling and
            training apply the same estimate against the same number; a number: that limit;
            ``None``: no check. The estimate is ``EinSpace.memory_bytes`` for architectures and
            ``nas.training.checks.estimate_memory_bytes`` (the same model, measured on the
            built network) for plain modules.
        time_budget_s: wall-clock budget per candidate (build, checks and training). Exceeding it
            stops training mid-epoch with status ``too_slow``. ``"auto"``: 3600 s on a GPU (a
            safety net; the paper has no budget) and 600 s on a CPU; ``None``: unlimited.
        tf32: the TF32 policy on a GPU for convolutions and matmuls together
            (``nas.training.gpu``): ``True`` TF32 for both, ``False`` full float32 for both,
            ``None`` PyTorch's defaults (TF32 convolutions, float32 matmuls). No effect on a CPU.
    """

    max_epochs: int = 16
    mode: str = "search"
    lr: float = 0.04
    momentum: float = 0.9
    weight_decay: float = 3e-4
    val_every_n_epochs: int | None = None
    nan_policy: str = "previous_epoch"
    accelerator: str = "auto"
    precision: str = "32-true"
    deterministic: bool = False
    forward_time_limit_s: float | str | None = "auto"
    forward_time: str = "auto"
    forward_passes: int = 5
    memory_limit_mb: float | str | None = "auto"
    time_budget_s: float | str | None = "auto"
    tf32: bool | None = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"trainer mode must be one of {MODES}, got {self.mode!r}")
        if self.nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {self.nan_policy!r}")
        if int(self.max_epochs) < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        self.max_epochs = int(self.max_epochs)
        if self.val_every_n_epochs is not None and int(self.val_every_n_epochs) < 1:
            raise ValueError(f"val_every_n_epochs must be >= 1 or null, got {self.val_every_n_epochs}")
        for name in ("forward_time_limit_s", "time_budget_s", "memory_limit_mb"):
            value = getattr(self, name)
            if isinstance(value, str) and value != "auto":
                raise ValueError(f"{name} must be a number, 'auto' or null, got {value!r}")
        if self.forward_time not in FORWARD_TIMES:
            raise ValueError(f"forward_time must be one of {FORWARD_TIMES}, got {self.forward_time!r}")
        if int(self.forward_passes) < 1:
            raise ValueError(f"forward_passes must be >= 1, got {self.forward_passes}")
        if self.tf32 is not None and not isinstance(self.tf32, bool):
            raise ValueError(f"tf32 must be true, false or null, got {self.tf32!r}")

    @property
    def eval_split(self) -> str:
        """The split the fitness is measured on: ``valid`` in search mode, ``test`` in final mode."""
        return "valid" if self.mode == "search" else "test"

    @property
    def check_val_every_n_epoch(self) -> int:
        """Lightning's ``check_val_every_n_epoch``: ``max_epochs`` means 'only the last epoch'."""
        n = self.val_every_n_epochs or self.max_epochs
        return max(1, min(int(n), self.max_epochs))

    def _limit(self, name: str, device_type: str) -> float | None:
        value = getattr(self, name)
        if value is None:
            return None
        if value == "auto":
            return AUTO_LIMITS["cuda" if device_type == "cuda" else "cpu"][name]
        return float(value)

    def forward_time_for(self, device_type: str) -> str:
        """``measured`` or ``estimated``: how the forward time is judged on ``device_type``."""
        if self.forward_time != "auto":
            return self.forward_time
        return "measured" if device_type == "cuda" else "estimated"

    def forward_limit_for(self, device_type: str) -> float | None:
        """The forward-time limit in seconds on ``device_type`` (``cuda``/``cpu``), or None. An
        estimated forward time is in reference-CPU seconds, so its ``auto`` limit is the CPU one."""
        if self.forward_time_for(device_type) == "estimated":
            device_type = "cpu"
        return self._limit("forward_time_limit_s", device_type)

    def time_budget_for(self, device_type: str) -> float | None:
        """The per-candidate wall-clock budget in seconds on ``device_type``, or None."""
        return self._limit("time_budget_s", device_type)

    def memory_limit_for(self, space: Any = None) -> float | None:
        """The memory limit in MB for candidates of ``space`` (``auto``: the space's
        ``mem_limit_mb``, or ``nas.space.config.MEM_LIMIT_MB`` without a space), or None."""
        value = self.memory_limit_mb
        if value != "auto":
            return None if value is None else float(value)
        space_cfg = getattr(space, "cfg", None)
        if space_cfg is not None and hasattr(space_cfg, "mem_limit_mb"):
            limit = space_cfg.mem_limit_mb
            return None if limit is None else float(limit)
        from nas.space.config import MEM_LIMIT_MB

        return MEM_LIMIT_MB

    def replace(self, **changes: Any) -> TrainerConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_any(cls, value: TrainerConfig | Mapping[str, Any] | None) -> TrainerConfig:
        """Accept a TrainerConfig, a plain mapping / DictConfig (``_target_`` ignored), or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        try:
            from omegaconf import DictConfig, OmegaConf

            if isinstance(value, DictConfig):
                value = OmegaConf.to_container(value, resolve=True)
        except ImportError:  # pragma: no cover
            pass
        data = {k: v for k, v in dict(value).items() if not str(k).startswith("_")}
        return cls(**data)
