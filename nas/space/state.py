"""The tensor state carried along every edge of a derivation tree (seed_system.md §1.1).

Shapes include a batch dimension of 1, exactly as the paper's code infers them, so the long
string's ``out_feature_shape`` is ``shape[1:]``.
"""
from __future__ import annotations

_KEEP = object()


class TensorState:
    """Immutable record of what flows into or out of a node.

    A plain ``__slots__`` class rather than a dataclass: samplers create one per node and the
    constructor cost shows up in the sampling benchmark.
    """

    __slots__ = ("shape", "mode", "other_shape", "other_mode", "branching_factor", "last_im_shape")

    def __init__(self, shape, mode="im", other_shape=None, other_mode=None,
                 branching_factor=1, last_im_shape=None):
        self.shape = shape
        self.mode = mode
        self.other_shape = other_shape
        self.other_mode = other_mode
        self.branching_factor = branching_factor
        self.last_im_shape = last_im_shape

    def evolve(self, *, shape=None, mode=None, other_shape=_KEEP, other_mode=_KEEP,
               branching_factor=None, last_im_shape=_KEEP) -> TensorState:
        """A copy with some fields replaced (explicit keywords: this is on the sampler's hot path)."""
        return TensorState(
            self.shape if shape is None else shape,
            self.mode if mode is None else mode,
            self.other_shape if other_shape is _KEEP else other_shape,
            self.other_mode if other_mode is _KEEP else other_mode,
            self.branching_factor if branching_factor is None else branching_factor,
            self.last_im_shape if last_im_shape is _KEEP else last_im_shape,
        )

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return (f"TensorState(shape={self.shape}, mode={self.mode!r}, other_shape={self.other_shape}, "
                f"bf={self.branching_factor}, last_im_shape={self.last_im_shape})")

    @classmethod
    def root(cls, input_shape) -> TensorState:
        """The network input: (1, C, H, W) in image mode."""
        return cls((1, *(int(d) for d in input_shape)))
