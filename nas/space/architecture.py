"""An immutable architecture: a derivation tree plus the input shape it was inferred for.
Its identity is its long string (byte-identical to the paper's code)."""
from __future__ import annotations

from nas.space import tree as T
from nas.space.strings import long_string, short_string


class Architecture:
    __slots__ = ("_root", "_cfg", "input_shape", "_long", "_short", "_num_params", "_nodes")

    def __init__(self, root: T.Node, input_shape: tuple[int, ...], cfg):
        self._root, self._cfg, self.input_shape = root, cfg, tuple(input_shape)
        self._long = self._short = self._num_params = self._nodes = None

    @property
    def root(self) -> T.Node:
        """The derivation tree. Treat it as read-only: architectures are values."""
        return self._root

    @property
    def long_string(self) -> str:
        if self._long is None:
            self._long = long_string(self._root)
        return self._long

    @property
    def short_string(self) -> str:
        if self._short is None:
            self._short = short_string(self._root)
        return self._short

    def nodes(self) -> list[T.Node]:
        """All nodes in pre-order (the root first)."""
        if self._nodes is None:
            self._nodes = T.preorder(self._root)
        return self._nodes

    @property
    def num_nodes(self) -> int:
        return len(self.nodes())

    @property
    def depth(self) -> int:
        return max(node.depth for node in self.nodes()) - self._root.depth

    @property
    def num_params(self) -> int:
        """Parameters of the compiled backbone (head excluded), each branch copy counted."""
        if self._num_params is None:
            self._num_params = T.parameter_count(self._root, self._cfg)
        return self._num_params

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Backbone output shape without the batch dimension."""
        return tuple(self._root.out.shape[1:])

    def memory_bytes(self, batch_size: int) -> int:
        return T.memory_bytes(self._root, self._cfg, batch_size)

    def __eq__(self, other) -> bool:
        return isinstance(other, Architecture) and self.long_string == other.long_string

    def __hash__(self) -> int:
        return hash(self.long_string)

    def __str__(self) -> str:
        return self.short_string

    def __repr__(self) -> str:
        text = self.short_string
        return f"Architecture({text[:80] + '...' if len(text) > 80 else text}, input_shape={self.input_shape})"
