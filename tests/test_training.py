"""nas.training: the paper's fitness, every failure status from a real failing candidate, seeding."""
from __future__ import annotations

import json
import math
import time

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from nas.training import (
    AUTO_LIMITS,
    STATUSES,
    CandidateModule,
    EvalRecord,
    TrainerConfig,
    classify_exception,
    estimate_memory_bytes,
    evaluate_candidate,
    measure_forward_seconds,
)

FAST = dict(max_epochs=2, forward_time_limit_s=None, time_budget_s=None)


@pytest.fixture(scope="module")
def space():
    from nas.space import EinSpace

    return EinSpace(input_shape=(3, 16, 16))


def small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 20),
    )


class SleepyNet(nn.Module):
    """A valid network that takes `delay` seconds per forward pass."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.net = small_net()
        self.delay = delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return self.net(x)


class FailAfter(nn.Module):
    """Works for `ok_calls` forward passes (so the pre-training checks pass), then raises."""

    def __init__(self, exc: BaseException, ok_calls: int = 6) -> None:
        super().__init__()
        self.net = small_net()
        self.exc = exc
        self.calls = 0
        self.ok_calls = ok_calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.ok_calls:
            raise self.exc
        return self.net(x)


def _assert_failed(record: EvalRecord, status: str) -> None:
    assert record.status == status, (record.status, record.reason)
    assert record.val_acc is None and record.test_acc is None
    assert record.reason and "\n" not in record.reason
    assert record.fitness == 0.0
    json.dumps(record.to_dict())  # failures serialise too


# ---------------------------------------------------------------------------- success path
def test_ok_record_and_last_epoch_only_evaluation(dm):
    record = evaluate_candidate(small_net, dm, TrainerConfig(**FAST), seed=0)
    assert record.status == "ok", record.reason
    assert 0.0 <= record.val_acc <= 1.0 and record.test_acc is None
    assert record.fitness == record.val_acc == record.accuracy
    assert record.epochs == 2 and len(record.history) == 2
    # fitness = accuracy after the LAST epoch; earlier epochs are not evaluated by default
    assert "val_acc" not in record.history[0] and record.history[-1]["val_acc"] == record.val_acc
    assert record.num_params == record.num_params_total == sum(p.numel() for p in small_net().parameters())
    assert record.train_loss == record.history[-1]["train_loss"] and math.isfinite(record.train_loss)
    assert record.memory_mb > 0 and record.build_s >= 0 and record.train_s > 0
    assert record.seconds >= record.train_s and record.device == "cpu" and record.seed == 0
    data = json.loads(json.dumps(record.to_dict()))
    assert EvalRecord.from_dict(data) == record
    assert "history" not in record.to_dict(history=False)


def test_cosine_schedule_and_sgd_settings(dm):
    module = CandidateModule(small_net(), max_epochs=4)
    opt_cfg = module.configure_optimizers()
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.04, 0.9, 3e-4)
    assert isinstance(sched["scheduler"], torch.optim.lr_scheduler.CosineAnnealingLR)
    assert sched["scheduler"].T_max == 4 and sched["interval"] == "epoch"
    # stepped once per epoch: the lr used in epoch e is 0.04 * (1 + cos(pi * e / T)) / 2
    record = evaluate_candidate(small_net, dm, TrainerConfig(**{**FAST, "max_epochs": 4}), seed=0)
    lrs = [row["lr"] for row in record.history]
    assert lrs == pytest.approx([0.04 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])


@pytest.mark.parametrize("every, evaluated", [(1, [1, 2, 3]), (2, [2, 3])])
def test_val_every_n_epochs_still_scores_the_last_epoch(dm, every, evaluated):
    cfg = TrainerConfig(**{**FAST, "max_epochs": 3, "val_every_n_epochs": every})
    record = evaluate_candidate(small_net, dm, cfg, seed=0)
    assert record.status == "ok", record.reason
    assert [row["epoch"] for row in record.history if "val_acc" in row] == evaluated
    assert record.history[-1]["val_acc"] == record.val_acc


def test_final_mode_trains_on_train_plus_valid_and_reports_test(dm):
    rows = []
    cfg = TrainerConfig(**{**FAST, "max_epochs": 1, "mode": "final"})
    record = evaluate_candidate(small_net, dm, cfg, seed=0, on_epoch_end=rows.append)
    assert record.status == "ok", record.reason
    assert record.val_acc is None and 0.0 <= record.test_acc <= 1.0
    assert record.accuracy == record.fitness == record.test_acc
    assert rows == record.history and rows[-1]["test_acc"] == record.test_acc


def test_same_seed_same_accuracy_different_seed_differs(dm):
    cfg = TrainerConfig(**FAST)
    a = evaluate_candidate(small_net, dm, cfg, seed=3)
    b = evaluate_candidate(small_net, dm, cfg, seed=3)
    c = evaluate_candidate(small_net, dm, cfg, seed=4)
    assert a.status == b.status == c.status == "ok"
    assert a.val_acc == b.val_acc and a.train_loss == b.train_loss
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert c.train_loss != a.train_loss


def test_data_seed_changes_only_the_shuffle(dm):
    cfg = TrainerConfig(**{**FAST, "max_epochs": 1})
    old = dm.seed
    try:
        a = evaluate_candidate(small_net, dm, cfg, seed=0, data_seed=11)
        b = evaluate_candidate(small_net, dm, cfg, seed=0, data_seed=11)
        c = evaluate_candidate(small_net, dm, cfg, seed=0, data_seed=12)
    finally:
        dm.set_epoch_seed(old)
    assert a.train_loss == b.train_loss and a.val_acc == b.val_acc
    assert c.train_loss != a.train_loss


def test_architecture_from_the_space_is_seeded(dm, space):
    arch = space.parse("routing[im2col(4,4,0), computation<linear(16)>, col2im]")
    cfg = TrainerConfig(**FAST)
    a = evaluate_candidate(arch, dm, cfg, space=space, seed=1)
    b = evaluate_candidate(arch, dm, cfg, space=space, seed=1)
    assert a.status == "ok", a.reason
    assert a.val_acc == b.val_acc and a.train_loss == b.train_loss
    assert a.num_params == arch.num_params and a.num_params_total > a.num_params  # + head
    assert a.memory_mb == pytest.approx(space.memory_bytes(arch, dm.batch_size) / 2**20)


# ---------------------------------------------------------------------------- failures
def test_nan_from_a_huge_learning_rate(dm):
    cfg = TrainerConfig(**{**FAST, "lr": 1e12, "max_epochs": 4, "nan_policy": "fail"})
    record = evaluate_candidate(small_net, dm, cfg, seed=0)
    _assert_failed(record, "nan")
    assert "non-finite" in record.reason
    assert record.epochs < 4 and record.nan_epoch == record.epochs + 1  # training stopped at the NaN
    # the paper's policy (default): the accuracy after the epoch before the NaN (more in test_training_nan.py)
    paper = evaluate_candidate(small_net, dm, cfg.replace(nan_policy="previous_epoch"), seed=0)
    assert paper.nan_epoch == record.nan_epoch and paper.epochs == record.epochs
    if record.nan_epoch == 1:
        _assert_failed(paper, "nan")
    else:
        assert paper.status == "ok" and paper.val_acc == paper.history[-1]["val_acc"]
        assert "non-finite" in paper.reason and "nan_policy=previous_epoch" in paper.reason


def test_too_slow_under_a_tiny_forward_time_limit(dm):
    cfg = TrainerConfig(**{**FAST, "forward_time_limit_s": 1e-9})
    record = evaluate_candidate(small_net, dm, cfg, seed=0)
    _assert_failed(record, "too_slow")
    assert "forward" in record.reason and record.forward_s > 0
    assert record.epochs == 0 and record.train_s is None  # rejected before training


def test_forward_check_stops_early_for_a_very_slow_candidate(dm):
    x, _ = dm.example_batch(8)
    net = SleepyNet(0.05)
    mean, finished = measure_forward_seconds(net, x, passes=5, limit_s=0.01)
    assert not finished and mean >= 0.01
    mean, finished = measure_forward_seconds(net, x, passes=2, limit_s=None)
    assert finished and mean >= 0.05


def test_forward_check_leaves_batchnorm_statistics_alone(dm):
    x, _ = dm.example_batch(64)
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    measure_forward_seconds(net, x, passes=3)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_too_large_under_a_tiny_memory_limit(dm, space):
    cfg = TrainerConfig(**{**FAST, "memory_limit_mb": 0.001})
    record = evaluate_candidate(small_net, dm, cfg, seed=0)  # generic estimate for a plain module
    _assert_failed(record, "too_large")
    assert "MB" in record.reason and record.memory_mb > 0.001

    class CountingSpace:  # the real space, counting builds: a too-large tree is never built
        builds = 0

        def memory_bytes(self, arch, batch_size):
            return space.memory_bytes(arch, batch_size)

        def build(self, arch, num_classes):
            CountingSpace.builds += 1
            return space.build(arch, num_classes)

    record = evaluate_candidate(space.seed("resnet18"), dm, cfg, space=CountingSpace(), seed=0)
    _assert_failed(record, "too_large")
    assert CountingSpace.builds == 0 and record.num_params == space.seed("resnet18").num_params


def test_estimate_memory_bytes_scales_with_batch():
    net = small_net()
    x = torch.randn(2, 3, 16, 16)
    small, large = estimate_memory_bytes(net, x, 16), estimate_memory_bytes(net, x, 256)
    params = sum(p.numel() for p in net.parameters()) * 4
    assert 3 * params < small < large


def test_wall_clock_budget_exceeded_mid_training(dm):
    cfg = TrainerConfig(max_epochs=50, forward_time_limit_s=None, time_budget_s=0.4)
    t0 = time.perf_counter()
    record = evaluate_candidate(lambda: SleepyNet(0.03), dm, cfg, seed=0)
    _assert_failed(record, "too_slow")
    assert "budget" in record.reason
    assert 0 < record.epochs < 50 or record.history == []
    assert time.perf_counter() - t0 < 10


def test_shape_error_from_a_broken_module(dm):
    broken = lambda: nn.Sequential(nn.Flatten(), nn.Linear(5, 20))  # noqa: E731 - input is 768 wide
    record = evaluate_candidate(broken, dm, TrainerConfig(**FAST), seed=0)
    _assert_failed(record, "shape_error")
    assert "mat1 and mat2" in record.reason


@pytest.mark.parametrize(
    "exc",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)"),
        MemoryError(),
    ],
    ids=["OutOfMemoryError", "RuntimeError", "MemoryError"],
)
def test_oom_during_training(dm, exc):
    net = FailAfter(exc, ok_calls=6)  # 5 timed passes + the memory-estimate pass succeed
    cfg = TrainerConfig(max_epochs=2, time_budget_s=None, forward_time_limit_s=100.0)
    record = evaluate_candidate(net, dm, cfg, seed=0)
    _assert_failed(record, "oom")
    assert record.forward_s is not None and net.calls == 7  # it failed inside Trainer.fit


def test_oom_in_the_forward_check(dm):
    net = FailAfter(torch.OutOfMemoryError("CUDA out of memory."), ok_calls=1)
    _assert_failed(evaluate_candidate(net, dm, TrainerConfig(**FAST), seed=0), "oom")


def test_any_other_exception_is_error(dm):
    record = evaluate_candidate(FailAfter(KeyError("boom"), ok_calls=0), dm, TrainerConfig(**FAST))
    _assert_failed(record, "error")
    assert "KeyError" in record.reason
    _assert_failed(evaluate_candidate(lambda: 42, dm, TrainerConfig(**FAST)), "error")
    _assert_failed(evaluate_candidate("not a candidate", dm, TrainerConfig(**FAST)), "error")
    _assert_failed(evaluate_candidate(small_net, dm, {"max_epochs": 0}), "error")  # bad config
    _assert_failed(evaluate_candidate(small_net, object(), TrainerConfig(**FAST)), "error")  # bad data


def test_keyboard_interrupt_is_not_swallowed(dm):
    with pytest.raises(KeyboardInterrupt):
        evaluate_candidate(FailAfter(KeyboardInterrupt(), ok_calls=0), dm, TrainerConfig(**FAST))


@pytest.mark.parametrize(
    "exc, status",
    [
        (RuntimeError("Given groups=1, weight of size [8, 3, 3, 3], expected input[2, 4, 16, 16] to have 3 channels"), "shape_error"),
        (RuntimeError("The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1"), "shape_error"),
        (RuntimeError("shape '[2, -1, 7]' is invalid for input of size 30"), "shape_error"),
        (IndexError("Dimension out of range (expected to be in range of [-2, 1], but got 3)"), "shape_error"),
        (RuntimeError("CUDA error: out of memory"), "oom"),
        (RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"), "error"),
        (ValueError("something else"), "error"),
    ],
)
def test_classify_exception(exc, status):
    got, reason = classify_exception(exc)
    assert got == status and reason.startswith(type(exc).__name__)


def test_statuses_are_the_documented_set():
    assert STATUSES == ("ok", "nan", "shape_error", "oom", "too_slow", "too_large", "error")


# ---------------------------------------------------------------------------- config
def test_trainer_config_defaults_are_the_papers():
    cfg = TrainerConfig()
    assert (cfg.max_epochs, cfg.lr, cfg.momentum, cfg.weight_decay) == (16, 0.04, 0.9, 3e-4)
    assert cfg.mode == "search" and cfg.eval_split == "valid"
    assert cfg.check_val_every_n_epoch == 16  # only the last epoch is evaluated
    assert cfg.forward_limit_for("cuda") == 0.1 == AUTO_LIMITS["cuda"]["forward_time_limit_s"]
    assert cfg.forward_limit_for("cpu") == AUTO_LIMITS["cpu"]["forward_time_limit_s"]
    assert cfg.time_budget_for("cpu") == AUTO_LIMITS["cpu"]["time_budget_s"]
    assert TrainerConfig(forward_time_limit_s=None).forward_limit_for("cuda") is None
    assert TrainerConfig(forward_time_limit_s=0.3).forward_limit_for("cuda") == 0.3
    assert TrainerConfig(mode="final").eval_split == "test"


@pytest.mark.parametrize(
    "bad",
    [{"mode": "train"}, {"max_epochs": 0}, {"forward_time_limit_s": "fast"}, {"time_budget_s": "x"},
     {"val_every_n_epochs": 0}, {"forward_passes": 0}],
)
def test_trainer_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        TrainerConfig(**bad)


def test_trainer_config_from_any():
    node = OmegaConf.create({"_target_": "nas.training.TrainerConfig", "max_epochs": 3})
    assert TrainerConfig.from_any(node) == TrainerConfig(max_epochs=3)
    assert TrainerConfig.from_any(None) == TrainerConfig()
    cfg = TrainerConfig(max_epochs=5)
    assert TrainerConfig.from_any(cfg) is cfg
    assert cfg.replace(max_epochs=7).max_epochs == 7 and cfg.to_dict()["max_epochs"] == 5
    with pytest.raises(TypeError):
        TrainerConfig.from_any({"max_epoch": 3})  # misspelt keys fail loudly
