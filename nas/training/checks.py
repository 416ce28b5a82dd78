"""Pre-training resource checks: memory estimate and forward-pass time.

Both run before a Trainer exists, so a candidate that would be rejected costs milliseconds (the
memory check needs no network at all when the search space can estimate it from the tree).
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from nas.space.cost import tensors_in


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def estimate_memory_bytes(net: nn.Module, x: torch.Tensor, batch_size: int) -> int:
    """Estimated peak bytes of one SGD training step at ``batch_size``, for a plain ``nn.Module``.

    The same model as the search space's estimate (``nas.space.tree.memory_bytes``, which
    needs no network), measured instead of derived from a tree: one forward pass of ``x`` (a few
    samples, grad enabled, train mode; BatchNorm statistics restored afterwards) records what
    autograd saves for the backward pass (distinct storages, parameters and ``x`` excluded) and
    the largest leaf-module output; both are scaled to ``batch_size``. Then

        saved + batch input + 2 x largest activation + 16 B per parameter

    (weight, gradient, momentum buffer, the optimizer step's temporary).
    """
    from nas.space.tree import PARAM_BYTES

    skip = {p.untyped_storage().data_ptr() for p in net.parameters()}
    skip.add(x.untyped_storage().data_ptr())
    saved: dict[int, int] = {}
    largest = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in skip:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    def hook(_module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest
        views_of = {t.untyped_storage().data_ptr() for t in tensors_in(inputs)}
        for out in tensors_in(output):
            if out.untyped_storage().data_ptr() not in views_of:  # a view allocates nothing
                largest = max(largest, out.numel() * out.element_size())

    buffers = {name: b.detach().clone() for name, b in net.named_buffers()}
    was_training = net.training
    handles = [m.register_forward_hook(hook) for m in net.modules() if not any(True for _ in m.children())]
    try:
        net.train()
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = net(x)
        del out
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, b in net.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        net.train(was_training)
    scale = batch_size / max(1, x.shape[0])
    params = sum(p.numel() for p in net.parameters())
    input_bytes = x[:1].numel() * x.element_size() * batch_size
    return int((sum(saved.values()) + 2 * largest) * scale + input_bytes + PARAM_BYTES * params)


# Seconds per multiply-add and per written activation element of a reference CPU thread: the
# least-squares fit (relative error) of the timed forward pass of the paper's protocol (mean of 5
# grad-enabled passes of a batch of 256) on the einspace seeds and 60 random samples at 3x16x16,
# one thread (bench/forward_cost.py: rank correlation 0.977 with the timing; the estimate is
# within 0.3-1.4x of the time for 80% of candidates, and the 0.05 s / 0.5 s limits decide alike
# for 61/64 and 60/64 of them). Fixed constants: the estimate is the same on any machine and load.
CPU_SECONDS_PER_MULTIPLY_ADD = 3.6e-11
CPU_SECONDS_PER_ACTIVATION_ELEMENT = 9.3e-10


def estimated_forward_seconds(cost: Any, batch_size: int) -> float:
    """Seconds a reference CPU thread takes for one forward pass of ``batch_size`` samples, from a
    :class:`nas.space.cost.ForwardCost` (per sample): load-independent, unlike the timed pass."""
    per_sample = (cost.multiply_adds * CPU_SECONDS_PER_MULTIPLY_ADD
                  + cost.activation_elements * CPU_SECONDS_PER_ACTIVATION_ELEMENT)
    return float(batch_size * per_sample)


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
