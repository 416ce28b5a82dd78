"""The GPU settings a candidate's numbers depend on (nas/training/gpu.py), checked without a GPU:
the TF32 policy's switches, the once-per-process warm-up, and how runs recorded before the policy
keep their identity."""
import pytest
import torch

from nas.search.identity import with_legacy_values
from nas.training import TrainerConfig
from nas.training.gpu import _WARMED, apply_tf32, warm_up


@pytest.fixture
def switches():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_the_policy_sets_both_switches_on_a_gpu_and_nothing_on_a_cpu(switches):
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True  # PyTorch's defaults
    assert apply_tf32(True, torch.device("cpu")) == (False, True)  # a CPU run is left alone
    assert apply_tf32(True, torch.device("cuda", 0)) == (True, True)  # convolutions and matmuls alike
    assert apply_tf32(False, torch.device("cuda", 0)) == (False, False)
    assert apply_tf32(None, torch.device("cuda", 0)) == (False, False)  # null: whatever is set stays


def test_the_trainer_config_holds_the_policy():
    assert TrainerConfig().tf32 is True and TrainerConfig(tf32=None).tf32 is None
    with pytest.raises(ValueError, match="tf32 must be true, false or null"):
        TrainerConfig(tf32="yes")
    # a run recorded before the key existed ran PyTorch's defaults: resuming it needs trainer.tf32=null
    assert with_legacy_values({"trainer": {"max_epochs": 16}})["trainer"]["tf32"] is None


def test_warm_up_runs_once_per_gpu_and_never_on_a_cpu():
    assert warm_up(torch.device("cpu")) is False and "cpu" not in _WARMED
    if not torch.cuda.is_available():
        pytest.skip("the CUDA warm-up itself needs a GPU")
    device = torch.device("cuda", torch.cuda.current_device())
    _WARMED.discard(str(device))
    assert warm_up(device) is True and warm_up(device) is False
