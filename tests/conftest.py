"""Test environment: offline, quiet, single-threaded (these machines have 2 cores)."""
import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

from nas.hydra_utils import register_resolvers  # noqa: E402

register_resolvers()  # train.yaml's ${train_subdir:...}, as train.py registers it (Compose API tests)


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def dm():
    """The real default dataset, shrunk: 2 training batches of 256, 1 evaluation batch."""
    from nas.data import MiniDigitsDataModule

    datamodule = MiniDigitsDataModule(
        name="mini_addnist", input_shape=[3, 16, 16], num_classes=20,
        n_train=512, n_valid=256, n_test=256, batch_size=256, on_device=False,
    )
    datamodule.setup()
    return datamodule


@pytest.fixture(scope="module")
def small():
    """An 8x8 einspace, one batch of 16 (5 classes) and 7 architectures (6 samples and resnet18):
    the proxy tests' shared case (tests/test_encodings_zcp.py, tests/test_zcp_device.py)."""
    from nas.space import EinSpace

    space = EinSpace(input_shape=(3, 8, 8))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 8, 8, generator=g)
    y = torch.randint(0, 5, (16,), generator=g)
    archs = [space.sample(s) for s in range(6)] + [space.seed("resnet18")]
    return space, x, y, archs


@pytest.fixture
def one_thread():
    """torch on one thread for this test (proxy values are compared byte for byte)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
