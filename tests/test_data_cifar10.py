"""CIFAR-10: a fake torchvision-format folder, the split, the batch augmentations, the errors."""

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar
from synthetic_data import write_fake_cifar10
from torchvision import transforms

from nas.data import CIFAR10DataModule, DatasetError, train_valid_split
from nas.data.augment import random_crop, random_hflip
from nas.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    write_fake_cifar10(tmp_path, n_per_batch=20, n_test=30)
    # The fake files cannot match torchvision's md5 sums of the real ones.
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    return tmp_path


def test_split_is_fixed_disjoint_and_complete():
    train, valid = train_valid_split(50_000, 10_000, split_seed=0)
    assert len(train) == 40_000 and len(valid) == 10_000
    both = torch.cat([train, valid])
    assert torch.equal(both.sort().values, torch.arange(50_000))
    again_train, again_valid = train_valid_split(50_000, 10_000, split_seed=0)
    assert torch.equal(train, again_train) and torch.equal(valid, again_valid)
    assert not torch.equal(valid, train_valid_split(50_000, 10_000, split_seed=1)[1])
    # Pinned: the documented split (RandomState(0).permutation) must never change silently.
    assert valid[:8].tolist() == [1, 3, 6, 14, 17, 18, 22, 24]
    assert int(valid.sum()) == 250_834_515


def test_datamodule_reads_torchvision_layout(fake_cifar):
    dm = CIFAR10DataModule(data_dir=fake_cifar, batch_size=16, device="cpu")
    dm.setup()
    assert (dm.name, dm.input_shape, dm.num_classes) == ("cifar10", (3, 32, 32), 10)
    assert dm.split_sizes() == {"train": 80, "valid": 20, "test": 30}  # a fifth held out
    assert set(dm.train_indices.tolist()).isdisjoint(dm.valid_indices.tolist())

    raw = tv_cifar.CIFAR10(str(fake_cifar / "cifar10"), train=True)
    x_val, y_val = next(iter(dm.val_dataloader()))
    idx = dm.valid_indices[:16].numpy()
    expected = transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)(
        torch.from_numpy(raw.data[idx]).permute(0, 3, 1, 2).float() / 255
    )
    torch.testing.assert_close(x_val, expected)
    assert torch.equal(y_val, torch.tensor(raw.targets)[idx])
    assert x_val.dtype == torch.float32 and y_val.dtype == torch.int64

    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (16, 3, 32, 32) and xb.dtype == torch.float32
    assert len(dm.train_dataloader()) == 80 // 16
    assert len(dm.trainval_dataloader()) == 100 // 16
    ex, _ = dm.example_batch(8)
    assert ex.shape == (8, 3, 32, 32)


def test_training_batches_are_augmented_reproducibly(fake_cifar):
    dm = CIFAR10DataModule(data_dir=fake_cifar, batch_size=80, device="cpu")
    x1, y1 = next(iter(dm.train_dataloader()))
    x2, y2 = next(iter(dm.train_dataloader()))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)  # same seed, same augmentation
    plain = CIFAR10DataModule(data_dir=fake_cifar, batch_size=80, device="cpu", augment=False)
    x3, y3 = next(iter(plain.train_dataloader()))
    assert torch.equal(y1, y3) and not torch.equal(x1, x3)


def test_random_crop_matches_pad_then_window():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    out = random_crop(x, 2, g, fill=fill)
    assert out.shape == x.shape
    padded = fill.view(1, 3, 1, 1).expand(64, 3, 12, 12).clone()
    padded[:, :, 2:10, 2:10] = x
    offsets = set()
    for n in range(64):
        hits = [
            (i, j) for i in range(5) for j in range(5)
            if torch.equal(out[n], padded[n, :, i : i + 8, j : j + 8])
        ]
        assert hits, f"sample {n} is not a window of its padded image"
        offsets.add(hits[0])
    assert len(offsets) > 10  # offsets vary per sample over the 5x5 range


def test_crop_pads_with_black_in_normalised_space(fake_cifar):
    dm = CIFAR10DataModule(data_dir=fake_cifar, batch_size=80, device="cpu")
    xb, _ = next(iter(dm.train_dataloader()))
    black = (-torch.tensor(CIFAR10_MEAN) / torch.tensor(CIFAR10_STD)).view(1, 3, 1, 1)
    pixel01 = xb * torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) + torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    assert pixel01.min() > -1e-5 and pixel01.max() < 1 + 1e-5
    # Some samples were shifted, so some rows are entirely padding (value = normalised black).
    row_is_pad = torch.isclose(xb, black.expand_as(xb), atol=1e-5).all(dim=(1, 3))
    assert row_is_pad.any()


def test_hflip_flips_about_half():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 1, 2, 5)
    out = random_hflip(x, g)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped | kept).all()
    assert 150 < int(flipped.sum()) < 250


def test_missing_cifar_is_a_clear_error(tmp_path):
    dm = CIFAR10DataModule(data_dir=tmp_path)
    with pytest.raises(DatasetError) as err:
        dm.setup()
    msg = str(err.value)
    assert str(tmp_path / "cifar10" / "cifar-10-batches-py") in msg
    assert "cifar-10-python.tar.gz" in msg and "data_batch_1" in msg


def test_corrupted_cifar_is_a_clear_error(tmp_path, monkeypatch):
    folder = write_fake_cifar10(tmp_path)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    with pytest.raises(DatasetError, match="could not be read"):
        CIFAR10DataModule(data_dir=tmp_path).setup()


def test_cifar_shape_guard():
    with pytest.raises(ValueError):
        CIFAR10DataModule(input_shape=[3, 28, 28])
    assert np.isclose(CIFAR10_MEAN[0], 0.4914)
