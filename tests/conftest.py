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


@pytest.fixture
def one_thread():
    """torch on one thread for this test (proxy values are compared byte for byte)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
