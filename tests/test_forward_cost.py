"""The load-independent forward limit (issue 9 §3): the counted forward cost, the estimated
forward time built on it, which one a config judges by, and a search that gives the same archive
on an idle and on a busy machine."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from proxy_oracle import flops
from search_helpers import deterministic_view, run_dir_for, search_config
from torch import nn

from nas.search.archive import Archive
from nas.search.runner import SearchRunner
from nas.space import EinSpace
from nas.space.cost import forward_cost
from nas.space.modules import DotProduct
from nas.training import TrainerConfig, precheck_candidate
from nas.training.checks import (
    CPU_SECONDS_PER_ACTIVATION_ELEMENT,
    CPU_SECONDS_PER_MULTIPLY_ADD,
    estimated_forward_seconds,
)
from nas.training.config import AUTO_LIMITS

CONF = str(Path(__file__).resolve().parents[1] / "conf")


class FakeData:
    def __init__(self, shape, batch_size=256, num_classes=10):
        self.shape, self.batch_size, self.num_classes = tuple(shape), batch_size, num_classes

    def setup(self, stage=None):
        pass

    def example_batch(self, n=256, split="train"):
        generator = torch.Generator().manual_seed(0)
        return torch.randn(n, *self.shape, generator=generator), torch.zeros(n, dtype=torch.long)


class Pair(nn.Module):
    """x -> (x, x^T) -> x @ x^T: exercises DotProduct (out elements x inner size)."""

    def __init__(self):
        super().__init__()
        self.dot = DotProduct(scaled=False)

    def forward(self, x):
        return self.dot((x, x.transpose(-1, -2)))


def _hog(stop) -> None:
    x = 1.0
    while not stop.is_set():
        x = x * 1.0000001 + 1e-9


class BusyMachine:
    """Another process spinning on a core for the duration of a ``with`` block."""

    def __enter__(self):
        self.stop = mp.get_context("spawn").Event()
        self.process = mp.get_context("spawn").Process(target=_hog, args=(self.stop,), daemon=True)
        self.process.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


# ------------------------------------------------------------------------------ the count
def test_forward_cost_counts_multiply_adds_and_written_elements_per_sample():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    cost = forward_cost(net, torch.randn(2, 3, 8, 8))
    conv, linear = 4 * 8 * 8 * 3 * 3 * 3, 5 * 4 * 8 * 8
    assert cost.multiply_adds == conv + linear
    # conv out, relu out, linear out; Flatten returns a view of its input and writes nothing
    assert cost.activation_elements == 4 * 64 + 4 * 64 + 5
    dot = forward_cost(Pair(), torch.randn(2, 6, 4))
    assert dot.multiply_adds == 6 * 6 * 4 and dot.activation_elements == 6 * 6
    assert net.training  # the mode is restored


def test_the_flops_proxy_is_the_counted_multiply_adds():
    space = EinSpace((3, 16, 16))
    x = torch.randn(4, 3, 16, 16)
    for arch in [space.seed("resnet18"), space.sample(1), space.sample(2)]:
        torch.manual_seed(0)
        net = space.build(arch, num_classes=10)
        assert flops(net, x) == pytest.approx(forward_cost(net, x[:2]).multiply_adds, rel=1e-12)


def test_estimate_is_batch_times_the_reference_rates():
    cost = forward_cost(nn.Linear(10, 3), torch.randn(2, 10))
    expected = 256 * (30 * CPU_SECONDS_PER_MULTIPLY_ADD + 3 * CPU_SECONDS_PER_ACTIVATION_ELEMENT)
    assert estimated_forward_seconds(cost, 256) == pytest.approx(expected)


# ------------------------------------------------------------------------------ the config
def test_auto_estimates_on_a_cpu_and_measures_on_a_gpu():
    cfg = TrainerConfig()
    assert cfg.forward_time == "auto"
    assert cfg.forward_time_for("cpu") == "estimated" and cfg.forward_time_for("cuda") == "measured"
    assert cfg.forward_limit_for("cuda") == AUTO_LIMITS["cuda"]["forward_time_limit_s"]
    # an estimate is in reference-CPU seconds: its auto limit is the CPU one on any device
    estimated = TrainerConfig(forward_time="estimated")
    assert estimated.forward_limit_for("cuda") == AUTO_LIMITS["cpu"]["forward_time_limit_s"]
    assert TrainerConfig(forward_time="measured").forward_time_for("cpu") == "measured"
    with pytest.raises(ValueError, match="forward_time must be one of"):
        TrainerConfig(forward_time="timed")


def test_the_paper_measures_and_the_demo_estimates():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        demo = compose(config_name="search")
        paper = compose(config_name="search", overrides=["experiment=paper"])
    assert demo.trainer.forward_time == "auto" and demo.trainer.forward_time_limit_s == 0.05
    assert demo.trainer.time_budget_s == "auto"  # no load-dependent 20 s budget in the demo
    assert paper.trainer.forward_time == "measured" and paper.trainer.forward_time_limit_s == "auto"


# ------------------------------------------------------------------------------ load
def test_the_estimated_check_gives_the_same_answer_on_a_busy_machine():
    space = EinSpace((3, 16, 16))
    data = FakeData((3, 16, 16))
    archs = [space.seed("resnet18")] + [space.sample(s) for s in range(4)]
    config = TrainerConfig(forward_time_limit_s=0.02)

    def decisions():
        out = []
        for arch in archs:
            failure = precheck_candidate(arch, data, config, space=space)
            out.append(None if failure is None else (failure.status, failure.reason, failure.forward_s))
        return out

    idle = decisions()
    with BusyMachine():
        busy = decisions()
    assert idle == busy
    assert idle[0] is not None and idle[0][0] == "too_slow" and "estimated forward time" in idle[0][1]
    assert "trainer.forward_time=measured" in idle[0][1]


def test_a_search_with_a_forward_limit_gives_the_same_archive_under_load(tmp_path):
    overrides = ("strategy=regularised_evolution", "surrogate=none", "search.budget=6",
                 "trainer.forward_time_limit_s=0.004", "search.first_generation=null")
    archives = []
    for name, busy in (("idle", False), ("busy", True)):
        cfg = search_config(*overrides)
        run_dir = run_dir_for(tmp_path / name, cfg)
        if busy:
            with BusyMachine():
                SearchRunner(cfg, run_dir).run()
        else:
            SearchRunner(cfg, run_dir).run()
        archive = Archive(run_dir / "archive.jsonl")
        archive.load()
        archives.append(archive.records)
    idle, busy = archives
    assert deterministic_view(idle) == deterministic_view(busy)
    assert [r["reason"] for r in idle] == [r["reason"] for r in busy]  # estimates to the digit
    assert any(r["status"] == "too_slow" for r in idle)  # the limit decided something
    assert sum(r["status"] == "ok" for r in idle) == 6
