"""The paper's two string forms (seed_system.md §1.6).

Long form (the surrogates' and language models' input), byte-identical to the original
``to_long_string()``: every nonterminal in ``[...]``, every terminal followed by the Python
``str`` of ``{'out_feature_shape': [...]}`` (its output shape without the batch dimension).
Short form (``str(node)`` in the original): brackets by kind, no shapes.
"""
from __future__ import annotations

from nas.space.tree import Node, render

_SHORT = {"branching": ("{", "}"), "sequential": ("(", ")"), "routing": ("[", "]"),
          "computation": ("<", ">")}


def _long_leaf(node: Node) -> str:
    return node.op.name + str({"out_feature_shape": list(node.out.shape[1:])})


def long_string(root: Node) -> str:
    return render(root, lambda op: ("[", "]"), _long_leaf)


def short_string(root: Node) -> str:
    return render(root, lambda op: _SHORT[op.kind], lambda node: node.op.name)
