"""Every conf/dataset yaml instantiates through Hydra's Compose API; registry and Lightning."""

from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.datasets.cifar as tv_cifar
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from synthetic_data import write_fake_cifar10, write_unseen_npy

from nas.data import (
    UNSEEN_NAS_SPECS,
    InMemoryDataModule,
    InMemoryLoader,
    create_datamodule,
    list_datasets,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
ALL = sorted([*UNSEEN_NAS_SPECS, "cifar10", "mini_addnist", "mini_multnist"])


def test_registry_lists_the_yaml_files():
    assert list_datasets() == ALL
    assert list_datasets() == sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))


@pytest.mark.parametrize("name", ALL)
def test_yaml_instantiates_with_hydra(name, tmp_path, monkeypatch):
    if name in UNSEEN_NAS_SPECS:
        write_unseen_npy(tmp_path, name)
    elif name == "cifar10":
        write_fake_cifar10(tmp_path)
        monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=[f"+dataset={name}", "+paths=default", f"paths.data_dir={tmp_path}"])
    for key in ("_target_", "name", "input_shape", "num_classes", "batch_size", "on_device", "seed"):
        assert key in cfg.dataset, key
    assert cfg.dataset.name == name
    assert (cfg.dataset.batch_size, cfg.dataset.on_device, cfg.dataset.seed) == (256, True, 0)
    if "data_dir" in cfg.dataset:
        assert cfg.dataset.data_dir == str(tmp_path)

    dm = instantiate(cfg.dataset, device="cpu")
    assert isinstance(dm, InMemoryDataModule)
    assert dm.name == name and dm.input_shape == tuple(cfg.dataset.input_shape)
    assert dm.num_classes == cfg.dataset.num_classes and dm.batch_size == 256
    dm.setup()
    x, y = dm.example_batch(4)
    assert x.shape == (4, *dm.input_shape) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y.max()) < dm.num_classes


def test_default_data_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path))
    dm = create_datamodule("addnist", batch_size=32)
    assert dm.folder == tmp_path / "addnist" and dm.batch_size == 32


class _Tiny(L.LightningModule):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes))

    def training_step(self, batch, _):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(1) == y).float().mean(), batch_size=len(y))

    def test_step(self, batch, _):
        x, y = batch
        self.log("test_acc", (self.net(x).argmax(1) == y).float().mean(), batch_size=len(y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.04, momentum=0.9)


def test_lightning_trainer_consumes_the_loaders():
    # image_size alone is enough: the yaml derives input_shape from it.
    dm = create_datamodule("mini_addnist", image_size=8, n_train=512, n_valid=128, n_test=128,
                           batch_size=64, device="cpu")
    assert dm.input_shape == (3, 8, 8)
    assert isinstance(dm.train_dataloader(), InMemoryLoader)
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    model = _Tiny(dm.num_classes)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 2 * (512 // 64)
    assert 0.0 <= float(trainer.callback_metrics["val_acc"]) <= 1.0
    (result,) = trainer.test(model, dataloaders=dm.test_dataloader(), verbose=False)
    assert 0.0 <= result["test_acc"] <= 1.0
