"""Every knob of the search space in one frozen record, validated once.

Defaults reproduce the paper's code (seed_system.md §1.5, §10); ``conf/space/einspace.yaml``
documents each switch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

RANK3_NORMS = ("batchnorm_seq", "layernorm")

# THE memory limit (MB) of the whole project: one estimate (``nas.space.tree.memory_bytes``:
# peak float32 memory of one SGD training step at ``batch_size``) against one number. The
# sampler and mutation redraw architectures above it (``SpaceConfig.mem_limit_mb``) and the
# trainer rejects candidates above it as ``too_large`` (``TrainerConfig.memory_limit_mb: auto``
# follows the space). ``auto`` in ``conf/space/einspace.yaml`` means this value.
# Why 80 GiB: the memory of the largest common training GPU (A100/H100 80 GB), so only
# architectures that cannot train on any single such GPU are excluded; on a smaller GPU the ones
# in between fail with a real, caught out-of-memory (status ``oom``), as the paper's did (its
# own limits: a real OOM, a per-individual build check, 0.1 s forward passes). It lets the four
# seed architectures through on every dataset (largest: 17.3 GiB, mlpmixer on 1x64x128) and
# keeps the sampler's tree-size distribution on 3x28x28 at the original's (over 200 seeds:
# p90 37 / mean 16.7 nodes vs the original's 38 / 18.7; 64 GiB gives 34 / 15.7, 32 GiB 31 /
# 14.4; ``bench/space.py``). CPU runs use less (the ``quick:`` block of conf/search.yaml).
MEM_LIMIT_MB = 81920.0


@dataclass(frozen=True)
class SpaceConfig:
    p_computation: float = 0.32
    legacy_col2im_mode: bool = True
    rank3_norm: str = "batchnorm_seq"
    fuse_convolutions: bool = True
    depth_limit: int = 20
    max_id_limit: int = 10000
    time_limit: float = 300.0
    individual_mem_limit_mb: float = 10240.0
    mem_limit_mb: float | str | None = MEM_LIMIT_MB  # "auto": MEM_LIMIT_MB; None: no limit
    batch_size: int = 256
    max_backtracks: int = 200_000
    max_restarts: int = 1000
    mutation_tries: int = 50

    def __post_init__(self):
        if self.mem_limit_mb == "auto":
            object.__setattr__(self, "mem_limit_mb", MEM_LIMIT_MB)
        elif self.mem_limit_mb is not None:
            if isinstance(self.mem_limit_mb, str) or float(self.mem_limit_mb) <= 0:
                raise ValueError(f"mem_limit_mb must be a positive number, 'auto' or None, got {self.mem_limit_mb!r}")
            object.__setattr__(self, "mem_limit_mb", float(self.mem_limit_mb))
        if not 0.0 <= self.p_computation <= 1.0:
            raise ValueError(f"p_computation must lie in [0, 1], got {self.p_computation}")
        if self.rank3_norm not in RANK3_NORMS:
            raise ValueError(f"rank3_norm must be one of {RANK3_NORMS}, got {self.rank3_norm!r}")
        for key in ("depth_limit", "max_id_limit", "batch_size", "max_restarts", "mutation_tries"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")

    def to_dict(self) -> dict:
        return asdict(self)
