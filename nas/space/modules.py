"""PyTorch modules that the compiler assembles (seed_system.md §1.3, §1.7).

Branch functions return lists of tensors and aggregations consume them, so a branching module
is ``merge([branch_i(x_i) for x_i in split(x)])``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Sequential2(nn.Module):
    def __init__(self, first: nn.Module, second: nn.Module):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x):
        return self.second(self.first(x))


class Branching(nn.Module):
    def __init__(self, split: nn.Module, branches: list[nn.Module], merge: nn.Module):
        super().__init__()
        self.split, self.branches, self.merge = split, nn.ModuleList(branches), merge

    def forward(self, x):
        return self.merge([branch(part) for branch, part in zip(self.branches, self.split(x), strict=True)])


class Routing(nn.Module):
    def __init__(self, pre: nn.Module, inner: nn.Module, post: nn.Module):
        super().__init__()
        self.pre, self.inner, self.post = pre, inner, post

    def forward(self, x):
        return self.post(self.inner(self.pre(x)))


class Clone(nn.Module):
    """k references to the input: no op mutates its input in place, so copies are not needed."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        return [x] * self.k


class Group(nn.Module):
    def __init__(self, k: int, dim: int):
        super().__init__()
        self.k, self.dim = k, dim

    def forward(self, x):
        return torch.split(x, x.shape[self.dim] // self.k, dim=self.dim)


class Add(nn.Module):
    def forward(self, xs):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total


class Cat(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, xs):
        return torch.cat(list(xs), dim=self.dim)


class DotProduct(nn.Module):
    """``a @ b`` with no implicit transpose (one branch must produce the transposed operand)."""

    def __init__(self, scaled: bool):
        super().__init__()
        self.scaled = scaled

    def forward(self, xs):
        a, b = xs
        out = a @ b
        return out * (1.0 / math.sqrt(a.shape[-1])) if self.scaled else out


class Permute(nn.Module):
    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class Im2Col(nn.Module):
    """(B,C,H,W) -> (B, H'W', C*k*k): unfold, patches as rows."""

    def __init__(self, kernel: int, stride: int, padding: int):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x):
        return F.unfold(x, self.kernel, padding=self.padding, stride=self.stride).transpose(1, 2)


class Col2Im(nn.Module):
    """(B, L, D) -> (B, L*D/(H'W'), H', W') using the grid of the latest im2col on the path:
    the paper's ``x.permute(0, 2, 1).reshape(B, -1, H', W')``. For L == H'W' (every sampled
    tree) this is the fold (B, D, H', W'); otherwise it is the paper's run-time reshape."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x):
        return x.transpose(1, 2).reshape(x.shape[0], -1, self.height, self.width)


class LinearConv2d(nn.Module):
    """routing[im2col(k,s,p), computation[linear(c)], col2im] computed as one convolution.

    The weights live in an ordinary ``nn.Linear`` of the literal form (same shape, same
    initialisation, same parameter count); ``F.unfold`` orders patch features channel-major,
    which is exactly ``Conv2d``'s weight layout, so ``weight.view(c, C, k, k)`` is the kernel.
    """

    def __init__(self, linear: nn.Linear, in_channels: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.linear = linear
        self.in_channels, self.kernel, self.stride, self.padding = in_channels, kernel, stride, padding

    def forward(self, x):
        weight = self.linear.weight.view(-1, self.in_channels, self.kernel, self.kernel)
        return F.conv2d(x, weight, self.linear.bias, stride=self.stride, padding=self.padding)


class PositionalEncoding(nn.Module):
    """Learned additive encoding of shape (1, *shape[1:]), initialised with randn."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.encoding = nn.Parameter(torch.randn(1, *shape))

    def forward(self, x):
        return x + self.encoding


class ClassifierHead(nn.Module):
    """The paper's head by output rank: rank 2 linear; rank 3 mean over D then linear over the
    S positions (faithful to the original); rank 4 global average then linear over channels."""

    def __init__(self, backbone_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        rank = len(backbone_shape)
        if rank not in (2, 3, 4):
            raise ValueError(f"no head for a backbone output of rank {rank}: {backbone_shape}")
        self.rank = rank
        self.fc = nn.Linear(backbone_shape[1], num_classes)

    def forward(self, x):
        if self.rank == 3:
            x = x.mean(dim=2)
        elif self.rank == 4:
            x = x.mean(dim=(2, 3))
        return self.fc(x)


class EinNetwork(nn.Module):
    """Backbone + head. ``backbone`` is exposed for parameter counting and proxies."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(self.backbone(x))
