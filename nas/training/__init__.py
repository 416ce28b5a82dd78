"""Training and scoring candidates (DESIGN §4): the paper's fitness on a lean Lightning Trainer.

    from nas.training import TrainerConfig, evaluate_candidate
    record = evaluate_candidate(arch, datamodule, TrainerConfig(max_epochs=16), space=space, seed=0)
    record.status, record.val_acc, record.to_dict()

``precheck_candidate`` applies only the pre-training limits (memory estimate, build, forward
time; the same code as ``evaluate_candidate``) and returns the failure record or None.
``evaluate_candidate`` never raises for a failing candidate: the failure is the record's
``status`` (ok, nan, shape_error, oom, too_slow, too_large, error) with a one-line ``reason``.
``nas.training.cli.train`` is the logic behind ``train.py``.
"""
from nas.device import resolve_device
from nas.training.callbacks import WallClockBudget, epoch_metrics
from nas.training.checks import count_parameters, estimate_memory_bytes, measure_forward_seconds
from nas.training.config import (
    AUTO_LIMITS,
    CPU_FORWARD_TIME_LIMIT_S,
    GPU_FORWARD_TIME_LIMIT_S,
    TrainerConfig,
)
from nas.training.evaluate import (
    build_network,
    evaluate_candidate,
    make_trainer,
    precheck_candidate,
)
from nas.training.module import CandidateModule
from nas.training.record import (
    STATUSES,
    CandidateFailure,
    EvalRecord,
    NonFiniteLossError,
    TimeBudgetExceeded,
    classify_exception,
)

__all__ = [
    "AUTO_LIMITS",
    "CPU_FORWARD_TIME_LIMIT_S",
    "GPU_FORWARD_TIME_LIMIT_S",
    "STATUSES",
    "CandidateFailure",
    "CandidateModule",
    "EvalRecord",
    "NonFiniteLossError",
    "TimeBudgetExceeded",
    "TrainerConfig",
    "WallClockBudget",
    "build_network",
    "classify_exception",
    "count_parameters",
    "epoch_metrics",
    "estimate_memory_bytes",
    "evaluate_candidate",
    "make_trainer",
    "measure_forward_seconds",
    "precheck_candidate",
    "resolve_device",
]
