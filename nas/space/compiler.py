"""Derivation tree -> ``nn.Module`` (seed_system.md §1.7).

branching(4/8) instantiate their single inner subtree k times with separate weights. With
``fuse`` the routing pattern im2col(k,s,p) -> computation[linear(c)] -> col2im becomes one
convolution over the same parameters (``modules.LinearConv2d``).
"""
from __future__ import annotations

from torch import nn

from nas.space import modules as M
from nas.space.tree import Node

MAX_BUILD_DEPTH = 600


def is_conv_pattern(node: Node) -> bool:
    """routing[im2col(k,s,p), computation[linear(c)], col2im] whose col2im folds exactly the
    im2col's H'xW' grid, i.e. a convolution. Within this pattern the linear keeps the im2col's
    L = H'W' positions and no other im2col intervenes, so the fold is always exact; the shape
    test states that condition rather than relying on it (an inexact col2im is a reshape that
    ``LinearConv2d`` would not reproduce, ``ops.Col2ImOp``)."""
    if node.op.kind != "routing":
        return False
    pre, inner, post = node.children
    if not (pre.op.kind == "im2col" and post.op.kind == "col2im"
            and inner.op.kind == "computation" and inner.children[0].op.kind == "linear"):
        return False
    grid = post.inp.last_im_shape
    return grid == pre.out.last_im_shape and post.inp.shape[1] == grid[0] * grid[1]


def build_module(node: Node, cfg, fuse: bool, depth: int = 0) -> nn.Module:
    if depth > MAX_BUILD_DEPTH:
        raise ValueError(f"architecture nested deeper than {MAX_BUILD_DEPTH} levels")
    op = node.op
    if op.is_terminal:
        return op.build(node.inp, node.out, cfg)
    children = node.children
    kind = op.kind
    if kind == "computation":
        return build_module(children[0], cfg, fuse, depth + 1)
    if kind == "sequential":
        return M.Sequential2(build_module(children[0], cfg, fuse, depth + 1),
                             build_module(children[1], cfg, fuse, depth + 1))
    if kind == "routing":
        if fuse and is_conv_pattern(node):
            pre, linear_leaf = children[0], children[1].children[0]
            linear = linear_leaf.op.build(linear_leaf.inp, linear_leaf.out, cfg)
            im2col = pre.op
            return M.LinearConv2d(linear, pre.inp.shape[1], im2col.kernel, im2col.stride, im2col.padding)
        return M.Routing(*(build_module(child, cfg, fuse, depth + 1) for child in children))
    split = build_module(children[0], cfg, fuse, depth + 1)
    if op.k == 2:
        branches = [build_module(children[1], cfg, fuse, depth + 1), build_module(children[2], cfg, fuse, depth + 1)]
    else:
        branches = [build_module(children[1], cfg, fuse, depth + 1) for _ in range(op.k)]
    return M.Branching(split, branches, build_module(children[-1], cfg, fuse, depth + 1))


def build_network(root: Node, cfg, num_classes: int, fuse: bool) -> M.EinNetwork:
    backbone = build_module(root, cfg, fuse)
    return M.EinNetwork(backbone, M.ClassifierHead(root.out.shape, num_classes))
