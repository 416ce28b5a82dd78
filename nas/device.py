"""The one rule that turns a device request into a ``torch.device``, for the data and the trainer.

``auto`` is the current GPU when one is visible, else the CPU; ``gpu`` and ``cuda`` are the current
GPU and fail without one; anything else is read by ``torch.device`` (``cpu``, ``cuda:1``, ...).
The GPU is always returned with its index (``cuda:0``, never a bare ``cuda``), so the device the
datamodule holds its tensors on compares equal to the one a candidate is trained on.
"""
from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``device`` (a Lightning accelerator name, a device string or a ``torch.device``) resolved."""
    name = str(device).lower()
    if name in ("auto", "gpu", "cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if name != "auto":
            raise RuntimeError(f"device {name!r} requested but CUDA is not available")
        return torch.device("cpu")
    return torch.device(name)
