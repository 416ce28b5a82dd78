"""Per-process GPU settings a candidate's numbers depend on: the TF32 policy and the warm-up.

**TF32** (``trainer.tf32``). On Ampere and later GPUs, PyTorch computes float32 convolutions in
TF32 by default but float32 matmuls in full precision. Our fused layers and the literal ones they
replace (a convolution against the unfold + matmul it equals) would then round differently. The
policy sets both switches together: ``true`` (TF32 for both, the speed the hardware is built for),
``false`` (full float32 for both: slower, closest to a CPU), ``null`` (PyTorch's defaults, what
runs recorded before this setting did). It changes nothing on a CPU.

**Warm-up.** The first CUDA work of a process initialises the context, cuBLAS and cuDNN (seconds).
The forward-time check would charge that to the first candidate and reject it as ``too_slow``, so
:func:`warm_up` runs a small convolution and matmul, forward and backward, once per process and
device before the first timed pass. Nothing is done on a CPU.
"""
from __future__ import annotations

import torch

_WARMED: set[str] = set()


def apply_tf32(policy: bool | None, device: torch.device) -> tuple[bool, bool]:
    """Set the matmul and cuDNN TF32 switches for ``policy`` on a CUDA ``device`` (a CPU device
    leaves them alone); returns the switches as they now are."""
    if device.type == "cuda" and policy is not None:
        torch.backends.cuda.matmul.allow_tf32 = bool(policy)
        torch.backends.cudnn.allow_tf32 = bool(policy)
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def warm_up(device: torch.device) -> bool:
    """Initialise CUDA, cuBLAS and cuDNN on ``device`` once per process; True if it ran now."""
    key = str(device)
    if device.type != "cuda" or key in _WARMED:
        return False
    with torch.random.fork_rng(devices=[device]):
        x = torch.randn(8, 3, 32, 32, device=device, requires_grad=True)
        weight = torch.randn(16, 3, 3, 3, device=device, requires_grad=True)
        out = torch.nn.functional.conv2d(x, weight, padding=1)
        out = out.flatten(1) @ torch.randn(out[0].numel(), 10, device=device)
        out.sum().backward()
        torch.cuda.synchronize(device)
    _WARMED.add(key)
    return True
