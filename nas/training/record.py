"""The result of evaluating one candidate, and the mapping from exceptions to failure statuses."""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch

STATUSES = ("ok", "nan", "shape_error", "oom", "too_slow", "too_large", "error")


class CandidateFailure(Exception):
    """Raised inside evaluation to stop a candidate with a known status."""

    status = "error"


class NonFiniteLossError(CandidateFailure):
    """The training loss became NaN/inf (the paper stops training at the first NaN loss).

    ``epoch`` and ``step`` (1-based) say where; ``loss`` is the value (nan, inf or -inf).
    """

    status = "nan"

    def __init__(self, message: str = "", *, epoch: int | None = None, step: int | None = None,
                 loss: float | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.loss = loss


class TimeBudgetExceeded(CandidateFailure):
    """The per-candidate wall-clock budget ran out mid-training."""

    status = "too_slow"


class ForwardTooSlow(CandidateFailure):
    """Mean forward time on one training batch is over the limit."""

    status = "too_slow"


class TooLarge(CandidateFailure):
    """Estimated parameter + activation memory is over the limit."""

    status = "too_large"


# Messages torch (and einops-like reshapes) produce when tensor shapes do not line up.
_SHAPE_PATTERNS = re.compile(
    r"shape|size mismatch|size of tensor|sizes of tensors|must match the size|cannot be multiplied"
    r"|dimension|expected input|channels|invalid for input of size|kernel size can't be greater"
    r"|padded input size|out of range|non-empty \dd|expected .*d input|mat1 and mat2|broadcast",
    re.IGNORECASE,
)


def one_line(text: str, limit: int = 300) -> str:
    """First non-empty line of ``text``, cut to ``limit`` characters."""
    for line in str(text).splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """Map an exception raised while building/checking/training a candidate to (status, reason)."""
    reason = one_line(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, CandidateFailure):
        return exc.status, one_line(str(exc)) or reason
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    if isinstance(exc, MemoryError) or (oom_type and isinstance(exc, oom_type)):
        return "oom", reason
    message = str(exc)
    if isinstance(exc, RuntimeError) and "out of memory" in message.lower():
        return "oom", reason
    if isinstance(exc, (RuntimeError, ValueError, IndexError)) and _SHAPE_PATTERNS.search(message):
        return "shape_error", reason
    return "error", reason


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class EvalRecord:
    """One evaluated candidate (JSON-serialisable with :meth:`to_dict`).

    Attributes:
        status: ``ok`` or a failure: ``nan`` (non-finite loss; see ``nan_epoch``), ``shape_error``, ``oom``,
            ``too_slow`` (forward-time limit or wall-clock budget), ``too_large`` (memory
            estimate), ``error`` (anything else).
        val_acc: validation accuracy (fraction) after the last epoch (search mode); ``None``
            unless status is ``ok``.
        test_acc: test accuracy (fraction) after the last epoch (final mode), else ``None``.
        reason: one line saying why a candidate failed; "" when ok, except for an ``ok`` record
            whose training hit a NaN loss, where it says which epoch's accuracy was kept.
        seconds: wall-clock seconds for the whole evaluation (build + checks + training).
        num_params: parameters of the backbone (the architecture's own count when known;
            otherwise of the whole network).
        num_params_total: parameters of the compiled network including the classifier head.
        memory_mb: estimated parameter + activation memory of one training step (MB).
        forward_s: mean seconds of one forward pass of a training batch (the too-slow check).
        build_s: seconds to compile the network and move it to the device.
        train_s: seconds inside ``Trainer.fit`` (training + evaluation).
        epochs: epochs completed.
        train_loss: mean training loss of the last completed epoch.
        device: ``cpu``/``cuda``/... (the too-slow check is hardware-dependent: record it).
        seed: the seed used for initialisation (and the shuffle when the caller set it).
        history: per-epoch rows (epoch, train_loss, lr, seconds, and the accuracy when evaluated).
        nan_epoch: the epoch (1-based) in which the training loss became non-finite and training
            stopped, else ``None``. With ``TrainerConfig.nan_policy="previous_epoch"`` (the
            paper's) such a record is ``ok`` with the accuracy of the last completed epoch
            (``nan_epoch - 1``; its history row holds it), or ``nan`` when ``nan_epoch`` is 1;
            with ``nan_policy="fail"`` it is always ``nan``.
    """

    status: str = "ok"
    val_acc: float | None = None
    test_acc: float | None = None
    reason: str = ""
    seconds: float = 0.0
    num_params: int | None = None
    num_params_total: int | None = None
    memory_mb: float | None = None
    forward_s: float | None = None
    build_s: float | None = None
    train_s: float | None = None
    epochs: int = 0
    train_loss: float | None = None
    device: str = "cpu"
    seed: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    nan_epoch: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def accuracy(self) -> float | None:
        """The accuracy this evaluation measured: ``val_acc`` in search mode, ``test_acc`` in final."""
        return self.test_acc if self.test_acc is not None else self.val_acc

    @property
    def fitness(self) -> float:
        """The search objective: the accuracy when ok, else 0.0 (the paper scores failures 0)."""
        return float(self.accuracy or 0.0) if self.ok else 0.0

    def to_dict(self, history: bool = True) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("val_acc", "test_acc", "seconds", "memory_mb", "forward_s", "build_s", "train_s", "train_loss"):
            out[key] = _finite_or_none(out[key])
        if not history:
            out.pop("history")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
