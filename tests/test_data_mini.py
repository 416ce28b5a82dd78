"""The embedded default datasets (mini_addnist, mini_multnist) built from sklearn's digits."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

from nas.data import MiniDigitsDataModule, build_mini_digits
from nas.data.mini import TASKS, digit_triples_by_label, label_of

SPLITS = ("train", "valid", "test")
SMALL = {"train": 600, "valid": 200, "test": 200}


@pytest.fixture(scope="module")
def sk_digits():
    d = load_digits()
    return np.asarray(d.images, dtype=np.float32) / 16, np.asarray(d.target)


@pytest.mark.parametrize("task", ["add", "mult"])
def test_build_is_deterministic(task):
    a = build_mini_digits(task, sizes=SMALL)
    b = build_mini_digits(task, sizes=SMALL)
    for s in SPLITS:
        assert torch.equal(a.x[s], b.x[s]) and torch.equal(a.y[s], b.y[s])
        assert np.array_equal(a.source_indices[s], b.source_indices[s])
    c = build_mini_digits(task, sizes=SMALL, build_seed=1)
    assert not torch.equal(a.x["train"], c.x["train"])


@pytest.mark.parametrize("task", ["add", "mult"])
def test_pools_are_disjoint_and_each_split_uses_only_its_pool(task):
    built = build_mini_digits(task, sizes=SMALL)
    pools = built.pools
    assert sum(len(p) for p in pools.values()) == 1797
    assert len(np.unique(np.concatenate(list(pools.values())))) == 1797
    used = {s: set(np.unique(built.source_indices[s]).tolist()) for s in SPLITS}
    for s in SPLITS:
        assert used[s] <= set(pools[s].tolist())
    assert used["train"].isdisjoint(used["valid"])
    assert used["train"].isdisjoint(used["test"])
    assert used["valid"].isdisjoint(used["test"])
    # Pools are 60/20/20 and stratified: every digit appears in every pool.
    _, targets = load_digits(return_X_y=True)
    for s, frac in zip(SPLITS, (0.6, 0.2, 0.2), strict=True):
        assert abs(len(pools[s]) / 1797 - frac) < 0.01
        assert set(targets[pools[s]].tolist()) == set(range(10))


@pytest.mark.parametrize("task", ["add", "mult"])
def test_label_rule_and_balance(task, sk_digits):
    images, targets = sk_digits
    built = build_mini_digits(task, image_size=8, sizes=SMALL)
    k = TASKS[task]
    for s in SPLITS:
        src, dig, y = built.source_indices[s], built.digits[s], built.y[s].numpy()
        assert np.array_equal(targets[src], dig)  # channel digit = the source image's digit
        a, b, c = dig.T
        expected = a + b + c if task == "add" else (a * b * c) % 10
        assert np.array_equal(y, expected)
        assert y.min() >= 0 and y.max() < k
        counts = np.bincount(y, minlength=k)
        assert counts.max() - counts.min() <= 1  # class-balanced
        # The channels are the source images (scaled to [0, 1], then normalised).
        raw = built.x[s] * built.std.view(1, 3, 1, 1) + built.mean.view(1, 3, 1, 1)
        np.testing.assert_allclose(raw.numpy(), images[src], atol=1e-5)
    if task == "add":
        assert all(t.sum(1).max() <= 19 for t in digit_triples_by_label("add"))
        assert label_of("add", 9, 9, 1) == 19
    else:
        assert label_of("mult", 3, 4, 5) == 0 and label_of("mult", 3, 3, 3) == 7


def test_datamodule_contract_and_train_normalisation():
    dm = MiniDigitsDataModule("mini_addnist", device="cpu")
    assert (dm.input_shape, dm.num_classes, dm.batch_size) == ((3, 16, 16), 20, 256)
    assert dm.split_sizes() == {"train": 4096, "valid": 1024, "test": 1024}
    x, y = dm.tensors("train")
    np.testing.assert_allclose(x.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(dim=(0, 2, 3)).numpy(), 1, atol=1e-4)
    xb, yb = dm.example_batch()
    assert xb.shape == (256, 3, 16, 16) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    assert len(dm.train_dataloader()) == 16 and len(dm.val_dataloader()) == 4
    mult = MiniDigitsDataModule("mini_multnist", image_size=8, n_train=300, device="cpu")
    assert mult.num_classes == 10 and mult.example_batch(5)[0].shape == (5, 3, 8, 8)
    with pytest.raises(ValueError):
        MiniDigitsDataModule("mini_addnist", num_classes=10)
    with pytest.raises(ValueError):
        MiniDigitsDataModule("mini_addnist", input_shape=[3, 8, 8])


class PerDigitNet(nn.Module):
    """A shared conv encoder per channel (one digit each), then an MLP over the three codes."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, 32), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(96, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.head(self.encoder(x.reshape(n * c, 1, h, w)).reshape(n, -1))


@pytest.mark.parametrize(("name", "min_acc"), [("mini_addnist", 0.12), ("mini_multnist", 0.2)])
def test_learnable_in_two_epochs(name, min_acc):
    """Chance is 5 % (20 classes) / 10 % (10 classes); measured ≈ 22 % / 33 % over 3 seeds."""
    dm = MiniDigitsDataModule(name, batch_size=64, device="cpu")
    torch.manual_seed(0)
    net = PerDigitNet(dm.num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(2):
        net.train()
        for x, y in dm.train_dataloader():
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(x).argmax(1) == y).sum()) for x, y in dm.val_dataloader())
    assert correct / 1024 > min_acc
