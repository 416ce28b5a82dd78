"""Every knob of the search space in one frozen record, validated once.

Defaults reproduce the paper's code (seed_system.md §1.5, §10); ``conf/space/einspace.yaml``
documents each switch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

RANK3_NORMS = ("batchnorm_seq", "layernorm")


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
    mem_limit_mb: float | None = 8192.0
    batch_size: int = 256
    max_backtracks: int = 200_000
    max_restarts: int = 1000
    mutation_tries: int = 50

    def __post_init__(self):
        if not 0.0 <= self.p_computation <= 1.0:
            raise ValueError(f"p_computation must lie in [0, 1], got {self.p_computation}")
        if self.rank3_norm not in RANK3_NORMS:
            raise ValueError(f"rank3_norm must be one of {RANK3_NORMS}, got {self.rank3_norm!r}")
        for key in ("depth_limit", "max_id_limit", "batch_size", "max_restarts", "mutation_tries"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")

    def to_dict(self) -> dict:
        return asdict(self)
