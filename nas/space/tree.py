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


def infer_tree(root: Node, root_state: TensorState, cfg, soft: bool = False, lenient: bool = False) -> None:
    """Replay a complete tree from its root state, re-inferring every node's input and output.

    Checks each terminal's hard validity (``soft`` adds the sampling-time mode rules;
    ``lenient`` instead accepts whatever the paper's code could run, ``Op.check_lenient``) and
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
            if reason is not None and lenient:
                reason = op.check_lenient(node.inp, cfg)
            if reason is not None:
                raise InferenceError(node, reason)
            node.out = terminal_output(node, cfg)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))


def has_inexact_fold(nodes) -> bool:
    """Whether some col2im reshapes rather than folds (L != H'W', ``ops.Col2ImOp``): such a
    tree comes only from reading a string (or mutating such a tree), never from sampling."""
    for node in nodes:
        if node.op.kind == "col2im":
            oh, ow = node.inp.last_im_shape
            if node.inp.shape[1] != oh * ow:
                return True
    return False


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


# --- training-memory estimate -----------------------------------------------------------------
# What autograd keeps for the backward pass, by terminal kind (the modules in modules.py).
_WEIGHTED = frozenset({"linear", "norm"})  # save their input for the weight's gradient
_SAVES_OUTPUT = frozenset({"relu", "softmax"})  # their backward reads the result
# Outputs that share their input's storage: identity, perm (a view), group (views), clone (the
# same tensor k times). col2im is a no-op in a fused convolution and otherwise a copy (the
# reshape of a transposed tensor).
_VIEWS = frozenset({"identity", "perm", "group", "clone"})
_HEAD = None  # the classifier head as a consumer (its Linear saves a rank-2 backbone output)

FLOAT_BYTES = 4
# Per parameter: weight, gradient, SGD momentum buffer and one gradient-sized temporary of the
# optimizer step (weight decay is added out of place).
PARAM_BYTES = 4 * FLOAT_BYTES


def memory_bytes(root: Node, cfg, batch_size: int) -> int:
    """Estimated peak bytes of one SGD training step at ``batch_size`` (float32):

        4 B x batch x (saved activations + input + transient) + 16 B x parameters

    - saved activations: what autograd keeps for the backward pass. An op output is kept when
      a ``linear``/``norm`` reads it (for the weight's gradient) or a ``dot_product`` whose
      operands require grad does, through any chain of views (identity, perm, group, clone),
      and the output of ``relu``/``softmax`` is kept when their input requires grad (some
      parameter upstream). A linear reading a permuted view (or a split along any dim but the
      last) of rank >= 3 saves a contiguous copy instead. Outputs nobody saves (a norm or an add followed by
      relu, a matmul before its scaling, anything before the first parameter) are freed during
      the forward pass. With ``fuse_convolutions`` the im2col of a convolution pattern is never
      materialised (the convolution saves its input) and its col2im is a no-op. Each
      branching(4/8) copy counts.
    - transient: the larger of 2 x the largest activation (an unsaved output next to its
      successor in the forward pass; an activation's gradient next to its input's gradient in
      the backward) and, for a branching, all its branch outputs plus twice the merged output
      (the branches are computed before they are merged, pairwise).
    - parameters: weight, gradient, momentum buffer and the optimizer step's temporary.

    Validated with ``bench/memory.py``: against the measured peak memory of real training steps
    (CPU peak RSS, per sample, the seeds and 12 random samples on 3x28x28 and 3x64x64) it is
    0.98-1.57x (median 1.32: slightly conservative, never below); against what autograd saves
    on the built network (``nas.training.checks.estimate_memory_bytes``; 227 seeds and samples
    on every dataset shape) the median ratio is 1.00 (0.71-4.51, higher where branch outputs are
    alive together before a merge, which module hooks cannot see). The previous rule (8 B per
    allocated element, fused im2col included) overcounted the seeds 3-18x. It replaces the
    paper's process-RSS checks (seed_system.md §10.20).
    """
    fused_views: set[int] = set()
    if cfg.fuse_convolutions:
        from nas.space.compiler import is_conv_pattern  # the compiler imports this module

        for node in preorder(root):
            if not node.op.is_terminal and is_conv_pattern(node):
                fused_views.add(id(node.children[0]))  # its im2col: never materialised
                fused_views.add(id(node.children[2]))  # its col2im: a no-op
    grad_in = _requires_grad_inputs(root, cfg)
    mults = {id(node): mult for node, mult in _with_multiplicity(root)}
    rank2_head = len(root.out.shape) == 2
    # the network input: counted on its own, but a linear may save a permuted copy of it
    _, kept = _saved_by_consumers([_first_terminal(root)], fused_views, rank2_head, grad_in, mults)
    largest = params = branches = 0
    for node in preorder(root):
        op = node.op
        if not op.is_terminal:
            if op.kind == "branching":  # every branch output is alive when they are merged
                inner = node.children[1:-1]
                alive = sum(prod(child.out.shape) for child in inner if _allocates(child))
                alive *= op.k if len(inner) == 1 else 1  # branching(4/8): k copies of one module
                branches = max(branches, alive + 2 * prod(node.out.shape))
            continue
        mult = mults[id(node)]
        params += mult * op.param_count(node.inp, cfg)
        if op.kind in _VIEWS or id(node) in fused_views:
            continue
        size = prod(node.out.shape)
        largest = max(largest, size)
        original, copies = _saved_by_consumers(_consumers(node), fused_views, rank2_head, grad_in, mults)
        if original or (op.kind in _SAVES_OUTPUT and grad_in[id(node)]):
            kept += mult * size
        kept += copies
    transient = max(2 * largest, branches)
    return FLOAT_BYTES * batch_size * (kept + prod(root.inp.shape) + transient) + PARAM_BYTES * params


def _first_terminal(node: Node) -> Node:
    while not node.op.is_terminal:
        node = node.children[0]
    return node


def _allocates(subtree: Node) -> bool:
    """Whether the subtree's output is a new tensor, not a view of its input: some op in it
    is not a view (identity, perm, group, clone)."""
    return any(node.op.is_terminal and node.op.kind not in _VIEWS for node in preorder(subtree))


def _consumers(node: Node) -> list:
    """The terminals that read ``node``'s output (``_HEAD``: the classifier head)."""
    while True:
        parent = node.parent
        if parent is None:
            return [_HEAD]
        children = parent.children
        if parent.op.kind == "branching":
            if node.index == 0:  # the branching function feeds every inner module
                return [_first_terminal(child) for child in children[1:-1]]
            if node.index < len(children) - 1:  # an inner module feeds the aggregation
                return [children[-1]]
        elif node.index + 1 < len(children):  # sequential, routing, computation: a chain
            return [_first_terminal(children[node.index + 1])]
        node = parent  # the last child: the parent's output goes on


def _requires_grad_inputs(root: Node, cfg) -> dict[int, bool]:
    """id(node) -> whether its input requires grad, i.e. some op upstream has parameters
    (the network input does not). Follows the state flow of ``child_input``."""
    grad_in: dict[int, bool] = {id(root): False}
    grad_out: dict[int, bool] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            grad_out[id(node)] = grad_out[id(node.children[-1])]
            continue
        parent = node.parent
        if parent is not None:
            siblings, i = parent.children, node.index
            if i == 0:
                flag = grad_in[id(parent)]
            elif parent.op.kind != "branching":
                flag = grad_out[id(siblings[i - 1])]
            elif i < len(siblings) - 1:  # an inner module reads the branching function's output
                flag = grad_out[id(siblings[0])]
            else:  # the aggregation reads every inner module
                flag = any(grad_out[id(inner)] for inner in siblings[1:-1])
            grad_in[id(node)] = flag
        if node.op.is_terminal:
            grad_out[id(node)] = grad_in[id(node)] or node.op.param_count(node.inp, cfg) > 0
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))
    return grad_in


def _saved_by_consumers(start: list, fused_views: set, rank2_head: bool,
                        grad_in: dict[int, bool], mults: dict[int, int]) -> tuple[bool, int]:
    """Follow a tensor from its first consumers through views: ``(kept, copies)``, whether some
    consumer saves the tensor itself, and the elements of contiguous copies that linears
    reading it through a permuted/grouped view save instead."""
    original, copies, seen = False, 0, set()
    stack = [(consumer, False) for consumer in start]
    while stack:
        consumer, strided = stack.pop()
        if consumer is _HEAD:
            original = original or rank2_head
            continue
        if id(consumer) in seen:
            continue
        seen.add(id(consumer))
        kind = consumer.op.kind
        if kind in _VIEWS or id(consumer) in fused_views:
            if id(consumer) in fused_views and kind == "im2col":
                original = True  # the convolution saves its input
                continue
            # views whose leading dims no longer merge: a perm, or a split along any dim but the last
            strided = strided or kind == "perm" or (
                kind == "group" and consumer.op.dim != len(consumer.inp.shape) - 1)
            stack.extend((nxt, strided) for nxt in _consumers(consumer))
        elif kind == "linear" and strided and len(consumer.inp.shape) >= 3:
            # torch.matmul folds the leading dims of a rank >= 3 input into one (its weight needs a
            # gradient): a copy when they do not merge, and the copy is what it saves
            copies += mults[id(consumer)] * prod(consumer.inp.shape)
        elif kind in _WEIGHTED or (kind == "dot_product" and grad_in[id(consumer)]):
            original = True
    return original, copies


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
