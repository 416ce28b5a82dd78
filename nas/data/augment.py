"""Batch augmentations in plain torch: whole batches at once, on the batch's own device.

Random numbers come from a CPU `torch.Generator` (so the same seed gives the same augmentation
on CPU and GPU) and are moved to the batch's device; the pixel work happens there.
"""

from __future__ import annotations

import torch


def random_crop(
    x: torch.Tensor,
    padding: int,
    generator: torch.Generator,
    fill: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Pad every image by `padding` on each side with `fill`, then crop back to H×W at a
    random offset per image: `torchvision.transforms.RandomCrop(size=(H, W), padding)` applied
    independently to each sample of an (N, C, H, W) batch.

    `fill` is a scalar or a per-channel (C,) tensor (useful when the batch is already
    normalised and the padding must be the normalised value of black).
    """
    n, c, h, w = x.shape
    p = int(padding)
    if p == 0 or n == 0:
        return x
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(-1)
    if fill_t.numel() not in (1, c):
        raise ValueError(f"fill must be a scalar or have {c} values, got {fill_t.numel()}")
    padded = fill_t.view(1, -1, 1, 1).expand(n, c, h + 2 * p, w + 2 * p).clone()
    padded[:, :, p : p + h, p : p + w] = x
    # Offsets 0..2p inclusive, as RandomCrop's randint(0, H + 2p - H + 1).
    offsets = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(x.device)
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    channels_last = padded.permute(0, 2, 3, 1)  # (N, H+2p, W+2p, C)
    out = channels_last[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability `p` (RandomHorizontalFlip per sample)."""
    flip = (torch.rand(len(x), generator=generator) < p).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
