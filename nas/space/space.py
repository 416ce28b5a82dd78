"""``EinSpace``: the public face of the search space (sample, mutate, parse, seeds, build)."""
from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter

from torch import nn

from nas.space import grammar as G
from nas.space.architecture import Architecture
from nas.space.compiler import build_module, build_network
from nas.space.config import SpaceConfig
from nas.space.parser import parse_tree
from nas.space.sampler import OutOfOptions, Restart, Sampler
from nas.space.seeds import SEEDS
from nas.space.state import TensorState
from nas.space.tree import (
    InferenceError,
    Node,
    copy_tree,
    has_inexact_fold,
    infer_tree,
    memory_bytes,
    preorder,
)


class SamplingError(RuntimeError):
    """No architecture could be sampled within ``max_restarts`` attempts."""


class MutationError(RuntimeError):
    """No valid mutant within ``mutation_tries`` attempts; the message says why."""


class EinSpace:
    """The einspace grammar for one input shape.

    >>> space = EinSpace(input_shape=(3, 28, 28))
    >>> arch = space.sample(seed=0)
    >>> net = space.build(arch, num_classes=20)

    Keyword arguments are the fields of ``SpaceConfig`` (limits and switches; defaults from the
    paper). ``stats`` counts how often each limit fired, since they shape the distribution.
    """

    def __init__(self, input_shape, **settings):
        fields = {f.name for f in dataclasses.fields(SpaceConfig)}
        unknown = sorted(set(settings) - fields)
        if unknown:
            raise ValueError(f"unknown EinSpace setting(s) {unknown}; valid: {sorted(fields)}")
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
        self.input_shape = shape
        self.cfg = SpaceConfig(**settings)
        self.options = G.build_options(self.cfg.p_computation)
        self._table = G.ops_by_level(self.options)
        self._sampler = Sampler(self.cfg, self.options)
        self.stats: Counter = Counter()

    # ------------------------------------------------------------------------- sampling
    def root_state(self) -> TensorState:
        return TensorState.root(self.input_shape)

    def sample(self, seed: int) -> Architecture:
        """A random architecture; the same seed gives the same architecture."""
        rng = random.Random(seed)
        started = time.perf_counter()
        for _ in range(self.cfg.max_restarts):
            root = Node(G.NETWORK, uid=1)
            root.inp = self.root_state()
            try:
                self._sampler.grow(rng, root, 1, started)
            except (Restart, OutOfOptions) as err:
                self.stats[f"restart: {getattr(err, 'reason', 'out of options')}"] += 1
                continue
            if self._too_large(root):
                self.stats["restart: over mem_limit"] += 1
                continue
            self.stats["sampled"] += 1
            return Architecture(root, self.input_shape, self.cfg)
        raise SamplingError(f"no architecture for input {self.input_shape} within "
                            f"{self.cfg.max_restarts} restarts; limits fired: {dict(self.stats)}")

    def mutate(self, arch: Architecture, seed: int) -> Architecture:
        """Resample the subtree of a uniformly chosen node (root included) in its context.

        A leaf never keeps its op. The context is the node's true input in the current tree
        (the paper's code used a stale one for later siblings, seed_system.md §10.10b). The
        whole tree is then re-inferred; a mutant that cannot run, or exceeds ``mem_limit_mb``,
        is discarded and another node is tried, up to ``mutation_tries`` times.
        """
        self._check_compatible(arch)
        rng = random.Random(seed)
        failures: Counter = Counter()
        for _ in range(self.cfg.mutation_tries):
            child = self._mutate_at(arch, rng.randrange(arch.num_nodes), rng, failures)
            if child is not None:
                return child
        self.stats["mutation failed"] += 1
        raise MutationError(f"no valid mutant of a {arch.num_nodes}-node architecture in "
                            f"{self.cfg.mutation_tries} tries: {dict(failures.most_common(4))}")

    def mutate_node(self, arch: Architecture, index: int, seed: int) -> Architecture:
        """Mutate the node at pre-order position ``index`` (0 is the root); one try."""
        self._check_compatible(arch)
        failures: Counter = Counter()
        child = self._mutate_at(arch, index, random.Random(seed), failures)
        if child is None:
            raise MutationError(f"node {index} ({arch.nodes()[index].op.name}) of {arch!r}: {dict(failures)}")
        return child

    def _mutate_at(self, arch, index, rng, failures) -> Architecture | None:
        root = copy_tree(arch.root)
        nodes = preorder(root)
        target = nodes[index]
        fresh = Node(target.level, target.parent, target.index, target.depth, target.uid)
        fresh.inp = target.inp
        if target.op.is_terminal:
            fresh.excluded = {target.op.name}
        try:
            self._sampler.grow(rng, fresh, len(nodes) + 1, time.perf_counter())
        except (Restart, OutOfOptions) as err:
            failures[f"resampling {target.level} failed ({err})"] += 1
            return None
        if target.parent is None:
            root = fresh
        else:
            target.parent.children[target.index] = fresh
        try:
            # A parent that was read leniently (a col2im reshaping, not folding; ops.Col2ImOp)
            # is replayed leniently too; every other mutant keeps the grammar's hard rules.
            infer_tree(root, self.root_state(), self.cfg, lenient=has_inexact_fold(arch.nodes()))
        except InferenceError as err:
            failures[f"downstream {err.node.op.name} cannot run"] += 1
            return None
        if self._too_large(root):
            failures["over mem_limit"] += 1
            return None
        self.stats["mutated"] += 1
        return Architecture(root, self.input_shape, self.cfg)

    # ------------------------------------------------------------------ strings and seeds
    def parse(self, text: str, check_shapes: bool = True) -> Architecture:
        """Parse the long, short or seed form. Raises ``ParseError`` naming the position.

        With ``check_shapes`` a long string's annotated shapes must match this space's
        input shape; ``False`` re-infers them (e.g. to move an architecture across datasets).
        """
        root = parse_tree(text, self._table, self.root_state(), self.cfg, check_shapes)
        return Architecture(root, self.input_shape, self.cfg)

    @staticmethod
    def seed_names() -> list[str]:
        return sorted(SEEDS)

    def seed(self, name: str) -> Architecture:
        if name not in SEEDS:
            raise KeyError(f"unknown seed architecture {name!r}; known: {', '.join(self.seed_names())}")
        return self.parse(SEEDS[name]())

    # ------------------------------------------------------------------------- building
    def build(self, arch: Architecture, num_classes: int, fuse: bool | None = None) -> nn.Module:
        """Network = backbone + the paper's head by output rank; ``fuse`` defaults to
        ``fuse_convolutions``."""
        self._check_compatible(arch)
        fuse = self.cfg.fuse_convolutions if fuse is None else fuse
        return build_network(arch.root, self.cfg, num_classes, fuse)

    def build_backbone(self, arch: Architecture, fuse: bool | None = None) -> nn.Module:
        self._check_compatible(arch)
        fuse = self.cfg.fuse_convolutions if fuse is None else fuse
        return build_module(arch.root, self.cfg, fuse)

    def memory_bytes(self, arch: Architecture, batch_size: int | None = None) -> int:
        """Estimated peak bytes of one SGD training step at ``batch_size`` (default: the
        space's): saved activations, transient, parameters with gradient and momentum
        (``nas.space.tree.memory_bytes``). ``mem_limit_mb`` bounds it while sampling and
        mutating, and the trainer applies the same limit (``TrainerConfig.memory_limit_mb``)."""
        return arch.memory_bytes(batch_size or self.cfg.batch_size)

    # -------------------------------------------------------------------------- helpers
    def _too_large(self, root: Node) -> bool:
        limit = self.cfg.mem_limit_mb
        return limit is not None and memory_bytes(root, self.cfg, self.cfg.batch_size) > limit * 2**20

    def _check_compatible(self, arch: Architecture) -> None:
        if arch.input_shape != self.input_shape:
            raise ValueError(f"architecture was inferred for input {arch.input_shape}, this space is "
                             f"{self.input_shape}; re-parse it with space.parse(arch.long_string, "
                             "check_shapes=False)")

    def __repr__(self) -> str:
        return f"EinSpace(input_shape={self.input_shape}, p_computation={self.cfg.p_computation})"
