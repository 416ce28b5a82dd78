"""Unseen-NAS datamodules against small synthetic files in the official layout."""

import numpy as np
import pytest
import torch
from synthetic_data import SMALL_SPLITS, write_unseen_npy

from nas.data import UNSEEN_NAS_SPECS, DatasetError, UnseenNASDataModule

EXPECTED = {  # seed_system.md §5: (C, H, W) fed to the net, classes
    "addnist": ((3, 28, 28), 20),
    "multnist": ((3, 28, 28), 10),
    "language": ((1, 24, 24), 10),
    "cifartile": ((3, 64, 64), 4),
    "gutenberg": ((1, 27, 18), 6),
    "isabella": ((1, 64, 128), 4),
    "geoclassing": ((3, 64, 64), 10),
    "chesseract": ((12, 18, 18), 3),
}


def make(tmp_path, name, **kw):
    write_unseen_npy(tmp_path, name)
    dm = UnseenNASDataModule(name, data_dir=tmp_path, batch_size=kw.pop("batch_size", 16), device="cpu", **kw)
    dm.setup()
    return dm


def raw(tmp_path, name, split):
    folder = tmp_path / name
    return np.load(folder / f"{split}_x.npy"), np.load(folder / f"{split}_y.npy")


def test_table_covers_the_eight_datasets():
    assert set(UNSEEN_NAS_SPECS) == set(EXPECTED)
    for name, (shape, k) in EXPECTED.items():
        assert UNSEEN_NAS_SPECS[name].input_shape == shape
        assert UNSEEN_NAS_SPECS[name].num_classes == k


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_classes_and_train_only_normalisation(tmp_path, name):
    shape, k = EXPECTED[name]
    dm = make(tmp_path, name)
    assert (dm.name, dm.input_shape, dm.num_classes, dm.batch_size) == (name, shape, k, 16)
    assert dm.split_sizes() == SMALL_SPLITS
    x, y = dm.example_batch(8)
    assert x.shape == (8, *shape) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64

    raw_train, _ = raw(tmp_path, name, "train")
    mean = raw_train.astype(np.float64).mean(axis=(0, 2, 3))
    std = raw_train.astype(np.float64).std(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(dm.channel_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(dm.channel_std.numpy(), std, rtol=1e-5)
    pad = UNSEEN_NAS_SPECS[name].pad
    for split in ("train", "valid", "test"):
        xs, ys = dm.tensors(split)
        raw_x, raw_y = raw(tmp_path, name, split)
        expected = (raw_x - mean[None, :, None, None]) / std[None, :, None, None]
        inner = xs[:, :, pad : xs.shape[2] - pad, pad : xs.shape[3] - pad] if pad else xs
        np.testing.assert_allclose(inner.numpy(), expected, rtol=1e-4, atol=1e-5)
        assert torch.equal(ys, torch.from_numpy(raw_y))
    # Train is standardised; valid (shifted by +1 in the synthetic data) is not, since it reuses
    # the train statistics.
    tx = dm.tensors("train")[0].numpy()
    vx = dm.tensors("valid")[0].numpy()
    if not pad:
        np.testing.assert_allclose(tx.mean(axis=(0, 2, 3)), 0, atol=1e-4)
        np.testing.assert_allclose(tx.std(axis=(0, 2, 3), ddof=1), 1, atol=1e-4)
        assert (vx.mean(axis=(0, 2, 3)) > 0.3).all()


def test_chesseract_is_padded_with_zeros_after_normalisation(tmp_path):
    dm = make(tmp_path, "chesseract")
    x, _ = dm.tensors("train")
    assert x.shape[1:] == (12, 18, 18)
    border = torch.ones(18, 18, dtype=torch.bool)
    border[5:13, 5:13] = False
    assert (x[:, :, border] == 0).all()
    interior = x[:, :, 5:13, 5:13]
    # The interior is standardised (mean 0, std 1 per channel), so padding came after Normalize.
    np.testing.assert_allclose(interior.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-4)
    assert (interior != 0).float().mean() > 0.99


def test_loaders_batching_and_seeded_order(tmp_path):
    dm = make(tmp_path, "language", batch_size=16)
    train = dm.train_dataloader()
    assert len(train) == 40 // 16  # drop_last
    batches = list(train)
    assert all(len(yb) == 16 for _, yb in batches)
    val = dm.val_dataloader()
    assert len(val) == 1 and sum(len(yb) for _, yb in val) == 12  # full, unshuffled
    assert torch.equal(next(iter(val))[1], dm.tensors("valid")[1])
    assert sum(len(yb) for _, yb in dm.test_dataloader()) == 10

    # Same seed -> same order; a new epoch (new iter) -> a new order; other seed -> other order.
    first = [yb for _, yb in dm.train_dataloader()]
    again = [yb for _, yb in dm.train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    loader = dm.train_dataloader()
    epoch1 = torch.cat([xb[:, 0, 0, 0] for xb, _ in loader])
    epoch2 = torch.cat([xb[:, 0, 0, 0] for xb, _ in loader])
    assert not torch.equal(epoch1, epoch2)
    dm.set_epoch_seed(123)
    other = torch.cat([xb[:, 0, 0, 0] for xb, _ in dm.train_dataloader()])
    assert not torch.equal(epoch1, other)

    tv = dm.trainval_dataloader()
    assert len(tv) == (40 + 12) // 16
    seen = torch.cat([xb.flatten(1) for xb, _ in tv])
    all_x = torch.cat([dm.tensors("train")[0], dm.tensors("valid")[0]]).flatten(1)
    assert len(seen) == 48 and len(torch.unique(seen, dim=0)) == 48
    assert all((row == all_x).all(1).any() for row in seen)


def test_setup_is_idempotent_and_device_is_selectable(tmp_path):
    dm = make(tmp_path, "gutenberg")
    x0 = dm.tensors("train")[0]
    dm.setup("fit")
    assert dm.tensors("train")[0] is x0
    assert dm.device == torch.device("cpu")
    assert dm.to("cpu") is dm and dm.train_dataloader().x.device.type == "cpu"
    auto = UnseenNASDataModule("gutenberg", data_dir=tmp_path, on_device=True)
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert UnseenNASDataModule("gutenberg", data_dir=tmp_path, on_device=False).device.type == "cpu"


def test_config_mismatch_is_rejected():
    with pytest.raises(ValueError, match="input_shape"):
        UnseenNASDataModule("addnist", input_shape=[3, 32, 32])
    with pytest.raises(ValueError, match="num_classes"):
        UnseenNASDataModule("addnist", num_classes=10)
    with pytest.raises(ValueError, match="unknown"):
        UnseenNASDataModule("nosuchset")


def test_new_dataset_in_the_same_layout(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    for split, n in SMALL_SPLITS.items():
        np.save(folder / f"{split}_x.npy", np.random.rand(n, 2, 6, 5).astype(np.float32))
        np.save(folder / f"{split}_y.npy", np.arange(n) % 3)
    dm = UnseenNASDataModule("toy", data_dir=tmp_path, input_shape=[2, 6, 5], num_classes=3, device="cpu")
    assert dm.example_batch(4)[0].shape == (4, 2, 6, 5)


# ------------------------------------------------------------------------------ errors
def test_missing_folder_names_it_and_the_source(tmp_path):
    dm = UnseenNASDataModule("addnist", data_dir=tmp_path / "nowhere")
    with pytest.raises(DatasetError) as err:
        dm.setup()
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "addnist") in msg
    assert "train_x.npy" in msg and "(N, 3, 28, 28)" in msg
    assert "Towers-D/NAS-Unseen-Datasets" in msg and "NAS_DATA_DIR" in msg


def test_missing_file_is_named(tmp_path):
    write_unseen_npy(tmp_path, "multnist")
    (tmp_path / "multnist" / "valid_y.npy").unlink()
    with pytest.raises(DatasetError, match=r"lacks valid_y\.npy") as err:
        UnseenNASDataModule("multnist", data_dir=tmp_path).setup()
    assert "data.ncl.ac.uk" in str(err.value)


@pytest.mark.parametrize(
    ("fname", "array", "fragment"),
    [
        ("train_x.npy", np.zeros((4, 3, 28, 27), np.float32), "expected (N, 3, 28, 28)"),
        ("valid_x.npy", np.zeros((4, 3 * 28 * 28), np.float32), "expected (N, 3, 28, 28)"),
        ("test_x.npy", np.full((10, 3, 28, 28), "a"), "dtype <U1"),
        ("train_y.npy", np.zeros((40, 2), np.int64), "expected (N,)"),
        ("valid_y.npy", np.full(12, 0.5), "non-integer"),
        ("test_y.npy", np.zeros(10, dtype=bool), "dtype bool"),
        ("train_y.npy", np.zeros(39, np.int64), "39 labels"),
        ("valid_y.npy", np.full(12, 20, np.int64), "labels in [20, 20]"),
        ("test_x.npy", np.array([{"a": 1}] * 10, dtype=object), "pickled object array"),
    ],
)
def test_malformed_file_is_reported_per_file(tmp_path, fname, array, fragment):
    write_unseen_npy(tmp_path, "addnist")
    np.save(tmp_path / "addnist" / fname, array, allow_pickle=True)
    with pytest.raises(DatasetError) as err:
        UnseenNASDataModule("addnist", data_dir=tmp_path).setup()
    msg = str(err.value)
    assert str(tmp_path / "addnist" / fname) in msg
    assert fragment in msg
    assert "Towers-D" in msg


def test_truncated_file_is_a_dataset_error(tmp_path):
    write_unseen_npy(tmp_path, "addnist")
    path = tmp_path / "addnist" / "train_x.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="train_x.npy"):
        UnseenNASDataModule("addnist", data_dir=tmp_path).setup()


def test_float_labels_with_integer_values_are_accepted(tmp_path):
    write_unseen_npy(tmp_path, "addnist")
    np.save(tmp_path / "addnist" / "test_y.npy", (np.arange(10) % 20).astype(np.float32))
    dm = UnseenNASDataModule("addnist", data_dir=tmp_path, device="cpu")
    assert dm.tensors("test")[1].dtype == torch.int64
