"""Where the zero-cost proxies run (``encoding.device``, surrogates/encodings/zcp.py): auto and an
explicit CPU agree, a bad device is refused by name, the setting stays out of a run's identity
and of a feature table's settings, and on a GPU the proxies match the CPU's."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from nas.search.identity import with_legacy_values
from surrogates.encodings import create_encoder
from surrogates.encodings.proxies import PROXIES
from surrogates.encodings.zcp import ZCPEncoder
from surrogates.feature_tables import feature_settings

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _context(small, **extra):
    space, x, y, _ = small
    return {"space": space, "batch": (x, y), "num_classes": 5, "seed": 2, **extra}


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto is the GPU here")
def test_auto_is_the_cpu_without_a_gpu_and_gives_the_same_rows(small):
    archs = small[3]
    rows = {d: create_encoder("graf_zcp", context=_context(small), device=d).encode(archs)
            for d in ("auto", "cpu", torch.device("cpu"))}
    plain = create_encoder("graf_zcp", context=_context(small)).encode(archs)  # the default: cpu
    for X in rows.values():
        np.testing.assert_array_equal(X, plain)
    assert str(ZCPEncoder(small[0], small[1:3], 5, device="auto").device) == "cpu"


@pytest.mark.parametrize("device", ["nonsense", "cuda:99", "mps"])
def test_a_bad_device_is_refused_naming_the_setting(small, device):
    with pytest.raises(ValueError, match=r"encoding\.device="):
        create_encoder("zcp", context=_context(small), device=device)


def test_encoding_leaves_the_callers_rng_alone(small):
    enc = create_encoder("zcp", context=_context(small), device="auto")
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    enc.encode(small[3][:2])
    assert torch.equal(torch.rand(4), expected)


def test_device_is_configured_but_in_no_identity_or_table_setting():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for name in ("zcp", "graf_zcp"):
            cfg = compose(config_name="search", overrides=[f"encoding={name}"])
            assert cfg.encoding.device == "auto"
        assert compose(config_name="evaluate").encoding.device == "auto"
    old = {"encoding": {"name": "graf_zcp", "batch_size": 256}, "trainer": {}}  # before encoding.device
    assert with_legacy_values(old)["encoding"]["device"] == "auto"
    assert "device" not in with_legacy_values({"encoding": {"name": "graf"}})["encoding"]
    node = {"name": "zcp", "batch_size": 64, "extra": False, "fisher_mode": "foresight"}
    assert feature_settings({**node, "device": "cuda:1"}, seed=1) == feature_settings(node, seed=1)


def _close(a: float, b: float, rel: float, floor: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=floor)


@needs_gpu
def test_gpu_proxies_match_the_cpu(small):
    from nas.training.gpu import apply_tf32

    space, x, y, archs = small
    gpu = torch.device("cuda", torch.cuda.current_device())
    before = apply_tf32(True, gpu)  # the trainer's tf32: the encoder must compute without it, then restore it
    cuda_rng = torch.cuda.get_rng_state(gpu)
    on_gpu = ZCPEncoder(space, (x, y), 5, seed=2, device="auto")
    assert on_gpu.device == gpu and on_gpu.x.device == gpu
    G = on_gpu.encode(archs)
    assert apply_tf32(None, gpu) == before and torch.equal(torch.cuda.get_rng_state(gpu), cuda_rng)
    assert set(on_gpu.failures) <= set(PROXIES), (on_gpu.failures, on_gpu.events)  # no whole-row failure
    C = ZCPEncoder(space, (x, y), 5, seed=2, device="cpu").encode(archs)
    assert G.dtype == np.float64 and G.shape == C.shape == (len(archs), len(PROXIES))
    for i, name in enumerate(PROXIES):
        floor = 1e-6 * float(np.nanmax(np.abs(C[:, i]), initial=0.0))  # a signed sum near 0 (plain, grasp)
        for g, c in zip(G[:, i], C[:, i], strict=True):
            assert _close(float(g), float(c), rel=1e-3, floor=floor), (name, g, c)
