"""A NaN training loss (seed_system.md §4.1): the paper keeps the previous epoch's accuracy.

``TrainerConfig.nan_policy="previous_epoch"`` (default) must give exactly the accuracy a per-epoch
validation measured after the epoch before the NaN, restore the parameters AND buffers of that
epoch, leave runs without a NaN untouched, give ``nan`` for a NaN in epoch 1; ``fail`` gives
``nan`` at any epoch.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nas.training import CandidateModule, EvalRecord, TrainerConfig, evaluate_candidate

# No pre-training checks: every forward pass in train mode is a training step.
BASE = dict(max_epochs=4, forward_time_limit_s=None, time_budget_s=None, memory_limit_mb=None)
STEPS_PER_EPOCH = 2  # 512 training samples, batches of 256, drop_last


class NanAt(nn.Module):
    """A small conv net (with BatchNorm buffers) whose training forward pass number ``at``
    (1-based) and later return NaN logits; ``at=None``: never. Counts evaluation passes."""

    def __init__(self, at: int | None) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Flatten(), nn.Linear(8 * 16 * 16, 20),
        )
        self.at = at
        self.train_calls = 0
        self.eval_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if not self.training:
            self.eval_calls += 1
            return out
        self.train_calls += 1
        if self.at is not None and self.train_calls >= self.at:
            out = out * float("nan")
        return out


def step_number(epoch: int, step: int) -> int:
    return (epoch - 1) * STEPS_PER_EPOCH + step


def run(dm, at, *, seed=0, on_epoch_end=None, **cfg):
    nets: list[NanAt] = []

    def make() -> NanAt:  # built after seeding, like every candidate
        nets.append(NanAt(at))
        return nets[-1]

    record = evaluate_candidate(make, dm, TrainerConfig(**{**BASE, **cfg}), seed=seed,
                                on_epoch_end=on_epoch_end and (lambda row: on_epoch_end(row, nets[-1])))
    return record, nets[-1]


@pytest.fixture(scope="module")
def reference(dm):
    """No NaN, validated after every epoch; the state after each epoch."""
    states = []
    record, _ = run(dm, None, val_every_n_epochs=1,
                    on_epoch_end=lambda row, net: states.append({k: v.clone() for k, v in net.state_dict().items()}))
    assert record.status == "ok" and [row["epoch"] for row in record.history] == [1, 2, 3, 4]
    return record, states


def test_reference_accuracies_differ_between_epochs(reference):
    record, _ = reference
    accs = [row["val_acc"] for row in record.history]
    assert accs[1] not in (accs[0], accs[2])  # so the tests below tell the epochs apart


def test_nan_in_epoch_3_gives_exactly_the_epoch_2_accuracy(dm, reference):
    ref, states = reference
    record, net = run(dm, step_number(3, 2))  # one optimizer step of epoch 3 ran before the NaN
    assert record.status == "ok" and record.ok, record.reason
    assert record.val_acc == ref.history[1]["val_acc"] and record.test_acc is None
    assert record.fitness == record.val_acc
    assert record.nan_epoch == 3 and record.epochs == 2 and len(record.history) == 2
    assert record.reason == ("non-finite training loss (nan) at epoch 3, step 2: "
                             "val_acc is that after epoch 2 (nan_policy=previous_epoch)")
    # the accuracy sits in epoch 2's row; epoch 1 was not evaluated; training was identical
    assert "val_acc" not in record.history[0] and record.history[1]["val_acc"] == record.val_acc
    assert [r["train_loss"] for r in record.history] == [r["train_loss"] for r in ref.history[:2]]
    assert record.train_loss == ref.history[1]["train_loss"]
    # the evaluated network is exactly the one after epoch 2: parameters and BatchNorm buffers
    state = net.state_dict()
    assert set(state) == set(states[1]) and "net.1.running_mean" in state
    assert all(torch.equal(state[k], states[1][k]) for k in state), "not the epoch-2 state"
    assert not all(torch.equal(states[1][k], states[2][k]) for k in state)
    assert net.eval_calls == 1  # one evaluation, after the NaN, of 1 batch of 256
    data = json.loads(json.dumps(record.to_dict()))
    assert data["nan_epoch"] == 3 and EvalRecord.from_dict(data) == record


def test_nan_at_the_first_step_of_an_epoch(dm, reference):
    ref, _ = reference
    record, _ = run(dm, step_number(4, 1))
    assert record.status == "ok" and record.val_acc == ref.history[2]["val_acc"]
    assert record.nan_epoch == 4 and record.epochs == 3 and "epoch 4, step 1" in record.reason


def test_with_per_epoch_validation_the_known_accuracy_is_used(dm, reference):
    ref, _ = reference
    record, net = run(dm, step_number(3, 2), val_every_n_epochs=1)
    assert record.status == "ok" and record.val_acc == ref.history[1]["val_acc"]
    assert [row.get("val_acc") for row in record.history] == [row["val_acc"] for row in ref.history[:2]]
    assert net.eval_calls == 2  # epochs 1 and 2 only: no evaluation after the NaN
    # every 2nd epoch: epoch 2 was evaluated (no re-evaluation), epoch 3 was not (snapshot)
    record, net = run(dm, step_number(3, 2), val_every_n_epochs=2)
    assert record.val_acc == ref.history[1]["val_acc"] and net.eval_calls == 1
    record, net = run(dm, step_number(4, 2), val_every_n_epochs=2)
    assert record.val_acc == ref.history[2]["val_acc"] and net.eval_calls == 2


def test_nan_in_epoch_1_is_status_nan(dm):
    record, net = run(dm, step_number(1, 2))
    assert record.status == "nan" and record.val_acc is None and record.fitness == 0.0
    assert record.nan_epoch == 1 and record.epochs == 0 and record.history == []
    assert record.reason == ("non-finite training loss (nan) at epoch 1, step 2: "
                             "no completed epoch to score (the paper's fitness 0.0)")
    assert net.eval_calls == 0


def test_fail_policy_is_status_nan_at_any_epoch(dm, reference):
    ref, _ = reference
    record, net = run(dm, step_number(3, 2), nan_policy="fail")
    assert record.status == "nan" and record.val_acc is None and record.fitness == 0.0
    assert record.nan_epoch == 3 and record.epochs == 2
    assert record.reason == "non-finite training loss (nan) at epoch 3, step 2"
    assert net.eval_calls == 0
    assert [r["train_loss"] for r in record.history] == [r["train_loss"] for r in ref.history[:2]]


def test_final_mode_keeps_the_previous_test_accuracy(dm):
    ref, _ = run(dm, None, mode="final", max_epochs=3, val_every_n_epochs=1)
    record, _ = run(dm, 2 * 3 + 1, mode="final", max_epochs=3)  # train+valid: 3 steps per epoch
    assert record.status == "ok" and record.val_acc is None
    assert record.test_acc == ref.history[1]["test_acc"] and record.nan_epoch == 3
    assert "epoch 3, step 1: test_acc is that after epoch 2" in record.reason


def test_runs_without_nan_are_unchanged_by_the_snapshot(dm):
    a, _ = run(dm, None)
    b, _ = run(dm, None, nan_policy="fail")
    assert a.status == b.status == "ok" and a.reason == b.reason == "" and a.nan_epoch is None
    assert a.val_acc == b.val_acc
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


def test_candidate_module_keeps_no_snapshot_unless_asked():
    module = CandidateModule(NanAt(None), max_epochs=4, keep_previous_epoch=True)
    assert module.keep_previous_epoch and module._snapshot == {}
    assert CandidateModule(NanAt(None)).keep_previous_epoch is False  # off unless asked


def test_nan_policy_config():
    assert TrainerConfig().nan_policy == "previous_epoch"
    assert TrainerConfig(nan_policy="fail").nan_policy == "fail"
    with pytest.raises(ValueError, match="nan_policy"):
        TrainerConfig(nan_policy="ignore")
