"""Derivation trees: nodes, how state flows between siblings, replay (re-inference) and the
traversals every other module uses. All traversals are iterative: no recursion limits.
"""
from __future__ import annotations

from math import prod

from nas.space.state import TensorState


class Node:
    """One node of a derivation tree. ``op`` is a grammar production or a terminal op."""

    __slots__ = ("level", "op", "children", "parent", "index", "depth", "inp", "out", "uid",
                 "excluded", "pos")

    def __init__(self, level, parent=None, index=0, depth=0, uid=0):
        self.level = level
        self.parent = parent
        self.index = index
        self.depth = depth
        self.uid = uid
        self.op = None
        self.children = []
        self.inp = None
        self.out = None
        self.excluded = None
        self.pos = -1

    def __repr__(self) -> str:
        return f"Node({self.level}, {self.op}, depth={self.depth})"


class InferenceError(Exception):
    """A replayed op cannot run on the input it receives."""

    def __init__(self, node: Node, reason: str):
        super().__init__(f"{node.op.name}: {reason}")
        self.node, self.reason = node, reason


def child_input(parent: Node, i: int) -> TensorState:
    """The state child ``i`` of ``parent`` receives (seed_system.md §1.2), given that its
    earlier siblings are complete."""
    if i == 0:
        return parent.inp
    production, children = parent.op, parent.children
    if production.kind != "branching":  # sequential, routing: a chain
        return children[i - 1].out
    if production.k == 2:
        if i < 3:  # both inner modules see the branching function's output
            return children[0].out
        first, second = children[1].out, children[2].out
        return first.evolve(other_shape=second.shape, other_mode=second.mode)
    if i == 1:
        return children[0].out
    inner = children[1].out  # one inner structure instantiated k times
    return inner.evolve(other_shape=inner.shape, other_mode=inner.mode)


def terminal_output(node: Node, cfg) -> TensorState:
    return with_outer_context(node, node.op.infer(node.inp, cfg))


def with_outer_context(node: Node, out: TensorState) -> TensorState:
    """An aggregation's output restores the enclosing context (other operand, branching factor)."""
    if node.level.startswith("aggregation"):
        outer = node.parent.inp
        return out.evolve(other_shape=outer.other_shape, other_mode=outer.other_mode,
                          branching_factor=outer.branching_factor)
    return out


def finish(node: Node) -> None:
    """A nonterminal's output is its last child's output."""
    node.out = node.children[-1].out


def preorder(root: Node) -> list[Node]:
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def infer_tree(root: Node, root_state: TensorState, cfg, soft: bool = False) -> None:
    """Replay a complete tree from its root state, re-inferring every node's input and output.

    Checks each terminal's hard validity (``soft`` adds the sampling-time mode rules) and
    raises ``InferenceError`` at the first op that cannot run.
    """
    root.inp = root_state
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            finish(node)
            continue
        if node.parent is not None and node is not root:
            node.inp = child_input(node.parent, node.index)
            node.depth = node.parent.depth + 1
        op = node.op
        if op.is_terminal:
            reason = op.check(node.inp, cfg, soft)
            if reason is not None:
                raise InferenceError(node, reason)
            node.out = terminal_output(node, cfg)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))


def copy_tree(root: Node) -> Node:
    """Structural copy; states are immutable and shared."""
    new_root = _copy_node(root, None)
    stack = [(root, new_root)]
    while stack:
        old, new = stack.pop()
        for child in old.children:
            twin = _copy_node(child, new)
            new.children.append(twin)
            stack.append((child, twin))
    return new_root


def _copy_node(node: Node, parent: Node | None) -> Node:
    twin = Node(node.level, parent, node.index, node.depth, node.uid)
    twin.op, twin.inp, twin.out, twin.pos = node.op, node.inp, node.out, node.pos
    return twin


def parameter_count(root: Node, cfg) -> int:
    """Exact parameter count of the compiled backbone (each branching(4/8) copy counted)."""
    total = 0
    for node, mult in _with_multiplicity(root):
        if node.op.is_terminal:
            total += mult * node.op.param_count(node.inp, cfg)
    return total


def memory_bytes(root: Node, cfg, batch_size: int) -> int:
    """Estimated bytes for one SGD step at ``batch_size``: activations kept for backward and
    their gradients (2 x float32 per allocated element), plus parameters, their gradients and
    momentum. An estimate in place of the paper's process-RSS checks (seed_system.md §10.20)."""
    activations = params = 0
    for node, mult in _with_multiplicity(root):
        op = node.op
        if op.is_terminal:
            if op.allocates:
                activations += mult * prod(node.out.shape)
            params += mult * op.param_count(node.inp, cfg)
    return 8 * batch_size * (activations + prod(root.inp.shape)) + 12 * params


def _with_multiplicity(root: Node):
    stack = [(root, 1)]
    while stack:
        node, mult = stack.pop()
        yield node, mult
        op = node.op
        for child in node.children:
            stack.append((child, mult * op.k if op.k > 2 and child.index == 1 else mult))


def render(root: Node, brackets, leaf) -> str:
    """Serialise iteratively: ``brackets(op) -> (open, close)``, ``leaf(node) -> str``."""
    parts, stack = [], [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        if item.op.is_terminal:
            parts.append(leaf(item))
            continue
        opening, closing = brackets(item.op)
        parts.append(item.op.name + opening)
        stack.append(closing)
        for child in reversed(item.children[1:]):
            stack.append(child)
            stack.append(", ")
        stack.append(item.children[0])
    return "".join(parts)
