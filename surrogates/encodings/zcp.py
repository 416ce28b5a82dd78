"""ZCP encoding: zero-cost proxies of a freshly initialised network on one batch (§6.2).

    >>> x, y = datamodule.example_batch(256)
    >>> enc = ZCPEncoder(space, (x, y), num_classes=20)
    >>> X = enc.encode(archs)   # (n, 7): grad_norm, snip, grasp, fisher, jacob_cov, plain, synflow

* Every architecture is built on the CPU from the CPU generator seeded with ``seed`` (inside
  ``fork_rng``, so the caller's RNG is untouched; only the CPU generator is seeded, so a GPU's
  training RNG is not reset): the same architecture and seed always give the same row.
* ``device`` (``encoding.device``): where the network and the batch go for the proxies.
  ``auto`` is the device candidates train on (``nas.device.resolve_device``: the job's GPU, else
  the CPU; the configs' default), ``cpu`` (this class's default) or ``cuda:<k>`` pin it. Values
  come back as plain floats. On a GPU the proxies run in full float32 (TF32 off for their
  duration, then restored) and inside a fork of that GPU's RNG, so they stay close to the CPU's
  (``tests/test_zcp_device.py``) and leave the training RNG alone. On the CPU the rows are exactly
  those computed before this setting existed.
* One batch is shared by all proxies and all architectures; the loss is cross-entropy.
* All proxies come from one fresh network and one shared forward
  (``proxies.compute_proxies``: one loss backward serves grad_norm/snip/plain/fisher and grasp's
  g; jacob_cov adds an input-only backward; grasp a double backward; synflow its own |θ|
  float64 copy at batch 1). See ``surrogates/encodings/proxies.py`` for every definition.
* ``fisher_mode``: ``"foresight"`` (default) reproduces the original's fisher (foresight's
  dim-1 channels and fan-in broadcast, on the literal unfused network, whichever form is
  built); ``"ours"`` is the per-output-channel rule used before (``proxies`` module doc).
* A proxy that fails gives NaN in its column and ``failures[<proxy name>] += 1``;
  ``events`` keeps the reasons (``"grasp: RuntimeError"``, ``"synflow: overflow clipped"``...).
  An architecture that cannot be built is a whole-row failure (base-class policy: NaN row,
  counted by exception type, not cached). Rows with per-proxy NaN *are* cached (they are
  deterministic for a given network and batch).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from nas.device import resolve_device
from surrogates.encodings.base import Encoder
from surrogates.encodings.proxies import (
    ALL_PROXIES,
    EXTRA_PROXIES,
    FISHER_MODES,
    PROXIES,
    check_fisher_mode,
    compute_proxies,
)


class ZCPEncoder(Encoder):
    """Zero-cost proxies as features; columns ``proxies`` (+ nwot, l2_norm, params, flops)."""

    name = "zcp"

    def __init__(self, space, batch: tuple[torch.Tensor, torch.Tensor], num_classes: int,
                 proxies: Sequence[str] = PROXIES, extra: bool = False, seed: int = 0,
                 loss_fn=F.cross_entropy, fisher_mode: str = FISHER_MODES[0],
                 device: str | torch.device = "cpu"):
        super().__init__()
        names = list(proxies) + [n for n in EXTRA_PROXIES if extra and n not in proxies]
        unknown = [n for n in names if n not in ALL_PROXIES]
        if unknown:
            raise ValueError(f"unknown proxies {unknown}; known: {list(ALL_PROXIES)}")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate proxies in {names}")
        x, y = batch
        x, y = torch.as_tensor(x).detach().float().cpu(), torch.as_tensor(y).detach().long().cpu()
        if tuple(x.shape[1:]) != tuple(space.input_shape):
            raise ValueError(f"batch inputs have shape {tuple(x.shape[1:])}, the space expects "
                             f"{tuple(space.input_shape)}")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"batch must hold matching, non-empty x and y, got {len(x)} and {len(y)}")
        self.device = proxy_device(device)
        self.space, self.x, self.y = space, x.to(self.device), y.to(self.device)
        self.num_classes, self.seed, self.loss_fn = int(num_classes), int(seed), loss_fn
        self.fisher_mode = check_fisher_mode(fisher_mode)
        self.columns = names
        self.events: Counter = Counter()

    def build(self, arch) -> torch.nn.Module:
        """The seeded fresh network the proxies see."""
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(self.seed)
            return self.space.build(arch, self.num_classes)

    def encode_one(self, arch) -> np.ndarray:
        net = self.build(arch).to(self.device)
        with _on_device(self.device):
            scores = compute_proxies(lambda: net, self.x, self.y, self.columns, self.loss_fn, self.events,
                                     fisher_mode=self.fisher_mode)
        row = np.array([scores[n] for n in self.columns], dtype=np.float64)
        for n, v in zip(self.columns, row, strict=True):
            if np.isnan(v):
                self.failures[n] += 1
        return row


def proxy_device(device: str | torch.device) -> torch.device:
    """``encoding.device`` as a ``torch.device`` (``auto``: ``resolve_device``); a clear error for a
    device that is not a CPU or a visible GPU, raised when the encoder is made, not per row."""
    try:
        resolved = resolve_device(device)
        if resolved.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("CUDA is not available")
            if resolved.index is None:
                resolved = torch.device("cuda", torch.cuda.current_device())
            if resolved.index >= torch.cuda.device_count():
                raise RuntimeError(f"only {torch.cuda.device_count()} GPU(s) are visible")
        elif resolved.type != "cpu":
            raise RuntimeError(f"the proxies run on a CPU or a CUDA GPU, not {resolved.type!r}")
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"encoding.device={device!r}: {err} (use auto, cpu, cuda or cuda:<index>)") from None
    return resolved


@contextmanager
def _full_float32(device: torch.device) -> Iterator[None]:
    """TF32 off on ``device`` for the block, the caller's switches restored after."""
    from nas.training.gpu import apply_tf32  # here: nas.training imports Lightning (seconds)

    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    apply_tf32(False, device)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@contextmanager
def _on_device(device: torch.device) -> Iterator[None]:
    """On a GPU: its RNG forked and full float32; on the CPU nothing changes."""
    if device.type != "cuda":
        yield
        return
    with torch.random.fork_rng(devices=[device]), _full_float32(device):
        yield
