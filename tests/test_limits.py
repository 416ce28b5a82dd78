"""The one memory limit (issue 8 §2): one estimate, one value, the same for sampling and training;
the paper's seed architectures pass every limit we can check on a CPU; rejections name the
override that lifts them; ``precheck_candidate`` is exactly evaluate_candidate's pre-training part.

The measured forward-time limit (0.1 s per batch of 256 on a GPU, the paper's) cannot be checked on
a CPU machine: these tests switch it off and check the memory limit (and that the seeds build).
The estimated forward time (the CPU default) is tested in tests/test_forward_cost.py.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from synthetic_data import write_fake_cifar10, write_unseen_npy

from nas.space import EinSpace
from nas.space.config import MEM_LIMIT_MB, SpaceConfig
from nas.training import (
    TrainerConfig,
    estimate_memory_bytes,
    evaluate_candidate,
    precheck_candidate,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
MB = 2**20
SEEDS = ("resnet18", "wideresnet16_4", "vit", "mlpmixer")
# every dataset the paper searched (Unseen-NAS) and CIFAR-10, with their input shapes
DATASETS = ("addnist", "multnist", "language", "cifartile", "geoclassing", "gutenberg", "isabella",
            "chesseract", "cifar10")
SHAPES = {(3, 28, 28), (1, 24, 24), (3, 64, 64), (1, 27, 18), (1, 64, 128), (12, 18, 18), (3, 32, 32)}
SMALL = "routing[im2col(4,4,0), computation<linear(16)>, col2im]"


def _compose(config: str, overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config, overrides=list(overrides))


class FakeData:
    """The datamodule protocol precheck_candidate needs, for any input shape."""

    def __init__(self, shape, batch_size=256, num_classes=10):
        self.shape, self.batch_size, self.num_classes, self.seed = tuple(shape), batch_size, num_classes, 0

    def setup(self, stage=None):
        pass

    def example_batch(self, n=256, split="train"):
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randn(n, *self.shape, generator=generator), torch.zeros(n, dtype=torch.long)


# ------------------------------------------------------------------ the seeds pass the limits
def test_dataset_configs_cover_the_listed_shapes():
    shapes = {tuple(yaml.safe_load((CONF / "dataset" / f"{name}.yaml").read_text())["input_shape"])
              for name in DATASETS}
    assert shapes == SHAPES


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_seeds_fit_the_default_memory_limit_on_every_input_shape(shape):
    space = EinSpace(shape)
    assert space.cfg.mem_limit_mb == MEM_LIMIT_MB
    for name in SEEDS:
        estimate = space.memory_bytes(space.seed(name), 256)
        assert estimate <= 0.5 * MEM_LIMIT_MB * MB, (name, shape, estimate / MB)  # with room to spare


@pytest.mark.parametrize("dataset", DATASETS)
def test_paper_search_config_lets_the_seeds_through(dataset, tmp_path, monkeypatch):
    """search.yaml (trainer=search) + experiment=paper, composed with the Compose API: the seeds
    pass the trainer's pre-training limits, built from the composed config (forward time off)."""
    if dataset == "cifar10":
        import torchvision.datasets.cifar as tv_cifar

        write_fake_cifar10(tmp_path)
        monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)  # fake files
    else:
        write_unseen_npy(tmp_path, dataset)
    cfg = _compose("search", [f"dataset={dataset}", "experiment=paper", "trainer=search",
                              f"paths.data_dir={tmp_path}", "dataset.on_device=false"])
    trainer = TrainerConfig.from_any(instantiate(cfg.trainer))
    space = instantiate(cfg.space)
    assert trainer.memory_limit_mb == "auto" and cfg.space.mem_limit_mb == "auto"
    assert trainer.memory_limit_for(space) == space.cfg.mem_limit_mb == MEM_LIMIT_MB
    assert space.cfg.batch_size == cfg.dataset.batch_size == 256
    datamodule = instantiate(cfg.dataset)
    cpu_checkable = trainer.replace(forward_time_limit_s=None)  # 0.1 s is a GPU limit
    for name in SEEDS:
        arch = space.seed(name)
        assert space.memory_bytes(arch, 256) <= MEM_LIMIT_MB * MB
        assert precheck_candidate(arch, datamodule, cpu_checkable, space=space, seed=0) is None, name


def test_quick_cpu_search_keeps_a_smaller_limit_that_the_seeds_pass():
    cfg = _compose("search")  # mini_addnist: the quick block
    space = instantiate(cfg.space)
    assert space.cfg.mem_limit_mb == cfg.quick.mini_addnist.mem_limit_mb < MEM_LIMIT_MB
    assert TrainerConfig.from_any(instantiate(cfg.trainer)).memory_limit_for(space) == space.cfg.mem_limit_mb
    for name in SEEDS:
        assert space.memory_bytes(space.seed(name)) <= space.cfg.mem_limit_mb * MB
    paper = instantiate(_compose("search", ["experiment=paper"]).space)
    assert paper.cfg.mem_limit_mb == MEM_LIMIT_MB


# ------------------------------------------------------------------ one value
def test_the_limit_is_one_value_defined_once():
    assert SpaceConfig().mem_limit_mb == MEM_LIMIT_MB
    assert SpaceConfig(mem_limit_mb="auto").mem_limit_mb == MEM_LIMIT_MB
    assert TrainerConfig().memory_limit_mb == "auto"
    assert TrainerConfig().memory_limit_for(None) == MEM_LIMIT_MB
    # no second number in the configs: both say auto
    assert yaml.safe_load((CONF / "space" / "einspace.yaml").read_text())["mem_limit_mb"] == "auto"
    assert yaml.safe_load((CONF / "trainer" / "search.yaml").read_text())["memory_limit_mb"] == "auto"
    assert yaml.safe_load((CONF / "trainer" / "final.yaml").read_text())["memory_limit_mb"] is None
    with pytest.raises(ValueError, match="mem_limit_mb"):
        SpaceConfig(mem_limit_mb="big")
    with pytest.raises(ValueError, match="memory_limit_mb"):
        TrainerConfig(memory_limit_mb="big")


def test_changing_the_limit_changes_sampler_and_trainer():
    shape = (3, 16, 16)
    resnet_mb = EinSpace(shape).memory_bytes(EinSpace(shape).seed("resnet18")) / MB
    limit = resnet_mb - 1  # just below the seed: the trainer must reject it, the sampler stay below
    for cfg in (_compose("train", [f"space.mem_limit_mb={limit}"]),
                _compose("search", [f"space.mem_limit_mb={limit}"])):
        space = instantiate(cfg.space)
        trainer = TrainerConfig.from_any(instantiate(cfg.trainer))
        assert space.cfg.mem_limit_mb == trainer.memory_limit_for(space) == limit
        record = precheck_candidate(space.seed("resnet18"), FakeData(shape), trainer, space=space)
        assert record.status == "too_large" and f"limit {limit:.0f} MB" in record.reason
    space = EinSpace(shape, mem_limit_mb=limit)
    samples = [space.sample(s) for s in range(8)]
    assert all(a.memory_bytes(256) <= limit * MB for a in samples)
    assert [a.long_string for a in samples] != [EinSpace(shape).sample(s).long_string for s in range(8)]
    assert precheck_candidate(space.seed("resnet18"), FakeData(shape), TrainerConfig(forward_time_limit_s=None),
                              space=EinSpace(shape)) is None  # the default limit lets it through


# ------------------------------------------------------------------ the estimate
def test_estimate_matches_what_autograd_saves():
    """The tree estimate (no network) against the same formula measured on the built network
    (saved-tensor hooks): the seeds and random samples agree within a small factor. (The tree
    also counts a branching's outputs alive together before the merge, which the module-level
    measurement cannot see: that is where it is higher.)"""
    torch.manual_seed(0)
    ratios = []
    for shape in ((3, 16, 16), (1, 27, 18)):
        space = EinSpace(shape, mem_limit_mb=256)
        archs = [space.seed(name) for name in SEEDS] + [space.sample(s) for s in range(12)]
        for arch in archs:
            measured = estimate_memory_bytes(space.build(arch, 10), torch.randn(2, *shape), 256)
            ratios.append(space.memory_bytes(arch, 256) / measured)
    assert 0.5 < min(ratios) and max(ratios) < 2.0 and 0.9 < float(np.median(ratios)) < 1.1, ratios


def test_estimate_counts_what_a_training_step_keeps():
    space = EinSpace((3, 16, 16))
    per_sample = 3 * 16 * 16
    conv = space.parse(SMALL)  # fused: im2col never materialised; the conv output goes to the head
    assert conv.memory_bytes(256) == 4 * 256 * (per_sample + 2 * 16 * 16) + 16 * conv.num_params
    # softmax before any parameter: nothing to save; after a linear: its output is saved
    first = space.parse("sequential[computation[relu], computation[softmax]]")
    second = space.parse("sequential[computation[linear(16)], computation[softmax]]")
    assert second.memory_bytes(256) - first.memory_bytes(256) == 4 * 256 * per_sample + 16 * (16 * 16 + 16)
    # parameters: weight, gradient, momentum and the step's temporary
    assert conv.memory_bytes(512) - conv.memory_bytes(256) == 4 * 256 * (per_sample + 2 * 16 * 16)


# ------------------------------------------------------------------ messages and precheck
def test_rejections_name_the_override_that_lifts_them():
    space = EinSpace((3, 16, 16))
    arch = space.parse(SMALL)
    data = FakeData((3, 16, 16))
    large = precheck_candidate(arch, data, TrainerConfig(memory_limit_mb=0.001), space=space)
    assert large.status == "too_large" and "trainer.memory_limit_mb=null" in large.reason
    slow = precheck_candidate(arch, data, TrainerConfig(forward_time_limit_s=1e-9), space=space)
    assert slow.status == "too_slow" and "trainer.forward_time_limit_s=null" in slow.reason
    assert slow.forward_s is not None
    assert precheck_candidate(arch, data, TrainerConfig(forward_time_limit_s=None), space=space) is None


def test_train_py_rejection_names_the_override_and_the_override_lifts_it(tmp_path):
    from nas.training.cli import train

    tiny = ["dataset.n_train=256", "dataset.n_valid=256", "dataset.n_test=256", "trainer.max_epochs=1",
            "logger=none", f"arch='{SMALL}'", "trainer.forward_time_limit_s=null"]
    result = train(_compose("train", [*tiny, "space.mem_limit_mb=0.01"]), run_dir=tmp_path / "a")
    assert result["status"] == "too_large" and "trainer.memory_limit_mb=null" in result["reason"]
    result = train(_compose("train", [*tiny, "space.mem_limit_mb=0.01", "trainer.memory_limit_mb=null"]),
                   run_dir=tmp_path / "b")
    assert result["status"] == "ok"


def test_precheck_is_evaluate_candidates_pre_training_part_and_leaves_the_rngs_alone():
    space = EinSpace((3, 16, 16))
    arch = space.parse(SMALL)
    data = FakeData((3, 16, 16))
    for config in (TrainerConfig(memory_limit_mb=0.001), TrainerConfig(forward_time_limit_s=1e-9),
                   TrainerConfig(forward_time_limit_s=1e-9, forward_time="measured")):
        pre = precheck_candidate(arch, data, config, space=space, seed=3)
        full = evaluate_candidate(arch, data, config, space=space, seed=3)
        assert (pre.status, pre.memory_mb, pre.num_params) == (full.status, full.memory_mb, full.num_params)
        if config.forward_time != "measured":  # the memory and the estimated time are counted
            assert pre.reason == full.reason and pre.forward_s == full.forward_s
        else:  # the measured time differs between two runs; the rest of the message does not
            assert pre.reason.startswith("mean forward time") and full.reason.startswith("mean forward time")
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    assert precheck_candidate(arch, data, TrainerConfig(forward_time_limit_s=None), space=space, seed=7) is None
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    broken = precheck_candidate(lambda: torch.nn.Linear(5, 3), data, TrainerConfig(forward_time_limit_s=None))
    assert broken.status == "shape_error"
