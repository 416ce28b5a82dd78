"""The forward cost of a built network, counted instead of timed: the same on any machine load.

One forward pass of a sample or two (eval mode, no grad) with forward hooks counts, per sample,

* multiply-adds of the layers that do arithmetic on weights or on pairs of activations:
  ``nn.Linear`` (out elements x in_features), convolutions and the fused ``LinearConv2d``
  (out elements x C_in/groups x kernel volume) and einspace's ``DotProduct`` (out elements x
  inner size);
* activation elements: the elements every leaf module writes (views excluded), which is what
  the memory-bound operations (im2col, permute, norms, activations, softmax) cost.

The zero-cost proxy ``flops`` is the first number; the trainer's load-independent forward
limit (``trainer.forward_limit=macs``) weighs both (``nas.training.config``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas.space.modules import DotProduct, LinearConv2d

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
ARITHMETIC_MODULES = (nn.Linear, LinearConv2d, DotProduct, *CONVOLUTIONS)


def arithmetic_modules(net: nn.Module) -> list[nn.Module]:
    """The modules whose multiply-adds are counted (the ``nn.Linear`` inside a ``LinearConv2d``
    is never called, so it adds nothing)."""
    return [m for m in net.modules() if isinstance(m, ARITHMETIC_MODULES)]


def multiply_adds(module: nn.Module, inputs: Any, output: torch.Tensor) -> float:
    """Multiply-adds of one call of an arithmetic module, for the whole batch (0 for others)."""
    if isinstance(module, nn.Linear):
        return float(output.numel() * module.in_features)
    if isinstance(module, LinearConv2d):
        return float(output.numel() * module.in_channels * module.kernel * module.kernel)
    if isinstance(module, CONVOLUTIONS):
        return float(output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size))
    if isinstance(module, DotProduct):
        return float(output.numel() * inputs[0][0].shape[-1])
    return 0.0


def batch_size_of(output: torch.Tensor) -> int:
    return output.shape[0] if output.dim() > 0 else 1


@dataclass(frozen=True)
class ForwardCost:
    """Per-sample cost of one forward pass."""

    multiply_adds: float
    activation_elements: float


def forward_cost(net: nn.Module, x: torch.Tensor) -> ForwardCost:
    """Count the per-sample forward cost of ``net`` on ``x`` (use one or two samples: the count
    does not depend on the batch). Eval mode and no grad, so nothing in ``net`` changes (BatchNorm
    running statistics are not updated in eval mode); the mode is restored afterwards."""
    macs = [0.0]
    elements = [0.0]

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        inputs_storage = {t.untyped_storage().data_ptr() for t in tensors_in(inputs)}
        for out in tensors_in(output):
            per = batch_size_of(out)
            macs[0] += multiply_adds(module, inputs, out) / per
            if out.untyped_storage().data_ptr() not in inputs_storage:  # a view writes nothing
                elements[0] += out.numel() / per

    leaves = [m for m in net.modules() if not any(True for _ in m.children()) or isinstance(m, ARITHMETIC_MODULES)]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    return ForwardCost(multiply_adds=macs[0], activation_elements=elements[0])


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors in a module's input or output (a tensor, or tuples/lists of them, nested)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensors_in(item)]
    return []
