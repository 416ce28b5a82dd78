"""Iterative PCFG sampling with validity filtering, the limiter's fallback to ``computation``
and chronological (precursor) backtracking (seed_system.md §1.4-§1.5).

The original deep-copies the whole sampling stack at every node so that it can restore it when
backtracking: O(n^2). Here the walk position *is* the tree: the next node to expand follows from
the node just completed (next sibling, or up to the parent's next sibling), and the nodes
expanded so far form a pre-order ``trail``. A dead end backtracks to its precursor (the previous
node in pre-order, ``trail[-1]``): that node's last choice is forbidden and its children are
discarded. O(1) per step.

Semantics we chose, and why (measured in ``bench/space.py``):
- A node's forbidden choices live on the node until the node itself is discarded (its parent
  re-expands), as the original's live node objects keep their ``available_rules``: a node that
  ran out of options stays out, so failure propagates upwards instead of re-enumerating every
  combination of the terminals below (which never finishes for a third of the seeds).
- Node ids are never reset by backtracking; once they pass ``max_id_limit`` (or the depth or
  time limit fires) a ``module`` may only become ``computation``, and if that is already ruled
  out the node is out of options. This bounds depth (leaves at most 2 below the depth limit).
With these rules the tree-size distribution on 3x28x28 matches the original's (median 8 nodes,
90th percentile ~40): measured over seeds 0-199 with the default memory limit (80 GiB), median 8,
90th percentile 37, mean 16.7, max 151; the quick block's 4096 MB trims the tail (90th
percentile 26, max 96). ``bench/space.py`` measures sizes and the cost of a sample (the original
took 5.4 s on average).
"""
from __future__ import annotations

import time
from math import prod

from nas.space import grammar as G
from nas.space.tree import Node, child_input, finish, with_outer_context


class OutOfOptions(Exception):
    """The subtree root has no valid option left."""


class Restart(Exception):
    """Abort this sample and draw a new one (memory estimate or backtracking budget)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Sampler:
    def __init__(self, cfg, options):
        self.cfg = cfg
        self.options = options
        self.indiv_limit = cfg.individual_mem_limit_mb * 2**20
        self._valid: dict[tuple, list] = {}  # (symbol, input state) -> valid (option, weight)
        self._outputs: dict[tuple, object] = {}  # (terminal op, input state) -> output state

    def grow(self, rng, root: Node, first_id: int, started: float) -> Node:
        """Expand ``root`` (its ``inp``, ``depth`` and ``parent`` set; its ``excluded`` set of
        option names may forbid some) into a complete subtree, in place. Raises ``OutOfOptions``/``Restart``."""
        cfg, options = self.cfg, self.options
        counter = first_id
        trail: list[Node] = []
        backtracks = 0
        cur = root
        while True:
            if cur is not root:
                cur.inp = child_input(cur.parent, cur.index)
            op = self._choose(rng, cur, options[cur.level], started)
            if op is None:
                if not trail:
                    raise OutOfOptions(f"no valid option for {cur.level}")
                backtracks += 1
                if backtracks > cfg.max_backtracks:
                    raise Restart("backtracking budget")
                prev = trail.pop()
                if prev.excluded is None:
                    prev.excluded = {prev.op.name}
                else:
                    prev.excluded.add(prev.op.name)
                prev.op, prev.children, prev.out = None, [], None
                cur = prev
                continue
            cur.op = op
            trail.append(cur)
            if not op.is_terminal:
                depth = cur.depth + 1
                cur.children = [Node(level, cur, i, depth, counter + 1 + i)
                                for i, level in enumerate(op.child_levels)]
                counter += len(op.child_levels)
                cur = cur.children[0]
                continue
            cur.out = self._terminal_output(cur)
            # advance: next sibling, or complete parents until one has a next sibling
            node = cur
            while node is not root:
                parent = node.parent
                if node.index + 1 < len(parent.children):
                    cur = parent.children[node.index + 1]
                    break
                finish(parent)
                node = parent
            else:
                return root

    def _terminal_output(self, node: Node):
        """The terminal's output state after the build-safety check (batch-1 bytes of its input,
        its largest temporary and its output under ``individual_mem_limit_mb``), cached per op
        and input state: states are immutable, so a cached output can be shared."""
        inp = node.inp
        key = (node.op, inp.shape, inp.mode, inp.other_shape, inp.other_mode, inp.branching_factor,
               inp.last_im_shape)
        out = self._outputs.get(key)
        if out is None:
            op = node.op
            if max(op.work_bytes(inp), 4 * prod(inp.shape)) >= self.indiv_limit:
                raise Restart("memory estimate")
            out = op.infer(inp, self.cfg)
            if 4 * prod(out.shape) >= self.indiv_limit:
                raise Restart("memory estimate")
            if len(self._outputs) > 200_000:
                self._outputs.clear()
            self._outputs[key] = out
        return with_outer_context(node, out)

    def _choose(self, rng, node: Node, opts, started: float):
        """Filter by validity (cached per symbol and input state), drop ruled-out choices, apply
        the limiter, renormalise and draw."""
        inp = node.inp
        key = (node.level, inp.shape, inp.mode, inp.other_shape, inp.last_im_shape)
        valid = self._valid.get(key)
        if valid is None:
            if len(self._valid) > 200_000:
                self._valid.clear()
            cfg = self.cfg
            valid = self._valid[key] = [(op, weight) for op, weight in opts
                                        if not op.is_terminal or op.check(inp, cfg, True) is None]
        excluded = node.excluded
        if excluded:
            valid = [(op, weight) for op, weight in valid if op.name not in excluded]
        if node.level == G.MODULE and self._limit_reached(node, started):
            # The limiter restricts the grammar itself: once `computation` is ruled out here,
            # the node is out of options (depth stays bounded, as in the paper's code).
            return G.COMPUTATION if any(op is G.COMPUTATION for op, _ in valid) else None
        if not valid:
            return None
        if len(valid) == 1:
            return valid[0][0]
        threshold = rng.random() * sum(weight for _, weight in valid)
        for op, weight in valid:
            threshold -= weight
            if threshold < 0:
                return op
        return valid[-1][0]

    def _limit_reached(self, node: Node, started: float) -> bool:
        cfg = self.cfg
        return (node.depth >= cfg.depth_limit or node.uid >= cfg.max_id_limit
                or time.perf_counter() - started >= cfg.time_limit)
