"""Pre-training resource checks: memory estimate and forward-pass time.

Both run before a Trainer exists, so a candidate that would be rejected costs milliseconds (the
memory check needs no network at all when the search space can estimate it from the tree).
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def estimate_memory_bytes(net: nn.Module, x: torch.Tensor, batch_size: int) -> int:
    """Parameter + activation bytes of one SGD training step at ``batch_size`` (generic fallback).

    Used when the candidate is a plain ``nn.Module`` (the search space estimates its own trees
    without building them: ``EinSpace.memory_bytes``). Activations: the outputs of every leaf
    module on a forward pass of ``x`` (a few samples, no grad), scaled to ``batch_size``; they are
    what autograd keeps for the backward pass. Parameters count three times (weights, gradients,
    SGD momentum buffers).
    """
    activation_bytes = 0

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal activation_bytes
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        for out in outputs:
            if isinstance(out, torch.Tensor):
                activation_bytes += out.numel() * out.element_size()

    handles = [m.register_forward_hook(hook) for m in net.modules() if not any(True for _ in m.children())]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    scale = batch_size / max(1, x.shape[0])
    param_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    return int(activation_bytes * scale + 3 * param_bytes + x[:1].numel() * x.element_size() * batch_size)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_forward_seconds(
    net: nn.Module, x: torch.Tensor, passes: int = 5, limit_s: float | None = None
) -> tuple[float, bool]:
    """Mean seconds of ``passes`` forward passes of ``x`` (grad enabled, train mode, as in the paper).

    Returns ``(mean_seconds, finished)``. With ``limit_s``, timing stops as soon as the passes so
    far already make the mean >= ``limit_s`` (their sum is >= passes * limit), so a very slow
    candidate is rejected after one or two passes instead of five; ``finished`` is then False and
    the mean is over the passes that ran. BatchNorm running statistics are restored afterwards, so
    the check does not change what training starts from.
    """
    device = x.device
    buffers = {name: b.detach().clone() for name, b in net.named_buffers()}
    was_training = net.training
    net.train()
    total = 0.0
    done = 0
    try:
        for _ in range(int(passes)):
            _sync(device)
            t0 = time.perf_counter()
            out = net(x)
            _sync(device)
            total += time.perf_counter() - t0
            done += 1
            del out
            if limit_s is not None and total >= passes * limit_s and done < passes:
                return total / done, False
    finally:
        with torch.no_grad():
            for name, b in net.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        net.train(was_training)
    return total / max(1, done), True
