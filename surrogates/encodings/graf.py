"""GRAF: 385 graph features of an einspace architecture (seed_system.md §6.3; after
Kadlecová et al.), computed without materialising the branching(4)/(8) copies.

Labels (``GRAF_LABELS``, 55)
----------------------------
The paper's code names operations in the original einspace's style and takes the vocabulary
from the options of its grammar dict, symbol by symbol (``module``, ``branching_fn_2``,
``branching_fn_4``, ``branching_fn_8``, ``aggregation_fn_2``, ``aggregation_fn_4``,
``aggregation_fn_8``, ``prerouting_fn``, ``postrouting_fn``, ``computation_fn``), options in
grammar order, keeping the first occurrence of a repeated name. That gives:

 0- 3  sequential_module branching_module routing_module computation_module
 4- 7  clone_tensor2 group_dim2s1d group_dim2s2d group_dim2s3d
 8-11  clone_tensor4 group_dim4s1d group_dim4s2d group_dim4s3d
12-15  clone_tensor8 group_dim8s1d group_dim8s2d group_dim8s3d
16-21  add_tensors cat_tensors1d2t cat_tensors2d2t cat_tensors3d2t dot_product scaled_dot_product
22-24  cat_tensors1d4t cat_tensors2d4t cat_tensors3d4t
25-27  cat_tensors1d8t cat_tensors2d8t cat_tensors3d8t
28-41  identity permute21 permute132 permute312 permute321 permute213 permute231
       im2col1k1s0p im2col1k2s0p im2col3k1s1p im2col3k2s1p im2col4k4s0p im2col8k8s0p im2col16k16s0p
42     col2im
43-54  linear16 linear32 linear64 linear128 linear256 linear512 linear1024 linear2048
       norm leakyrelu softmax learnable_positional_encoding

Translation of our op names: every ``branching(k)`` is ``branching_module``; ``im2col(a,b,c)`` ->
``im2col{a}k{b}s{c}p``; ``clone(k)`` -> ``clone_tensor{k}``; ``group(k,d)`` -> ``group_dim{k}s{d}d``;
``cat(k,d)`` -> ``cat_tensors{d}d{k}t``; every ``add(k)`` -> ``add_tensors``;
``dot_product(scaled)`` -> ``scaled_dot_product``; ``perm(0,a,b[,c])`` -> ``permute{a}{b}[{c}]``;
``linear(d)`` -> ``linear{d}``; ``relu`` -> ``leakyrelu``; ``pos_enc`` ->
``learnable_positional_encoding``. The seed-only ``linear(x4)``/``linear(x0.25)`` become
``linearx4``/``linearx0.25``, which are *not* in the vocabulary: such a node is a graph node
(it counts in the degree means' denominator and carries edges and paths) but has no column of
its own and adds to no ``linear{d}`` feature. (The paper's code raised ``KeyError`` on them;
they never occur in sampled architectures.)

Columns (``GRAF_COLUMNS``, 385 = 7 families x 55 labels, family-major)
--------------------------------------------------------------------
``cnt_<l>`` for all 55 labels, then ``max_nodes_path_<l>``, ``min_nodes_path_<l>``, ``in_<l>``,
``out_<l>``, ``out_deg_<l>``, ``in_deg_<l>``; within each family the label order above. This is
the key order of the paper's flat feature dict after its prefix filter.

Definitions, on the DAG of terminal ops plus an ``input`` and an ``output`` node, where each
branching(4)/(8) inner module appears k times and edges follow the data flow (input -> entry op;
sequential first -> second; routing pre -> inner -> post; branching fn -> each inner branch ->
aggregation; last op -> output):

* ``cnt_<l>``: occurrences in the derivation tree, k-fold copies included; module labels count
  module nodes (the root included). The only family where module labels are non-zero.
* ``max_nodes_path_<l>`` / ``min_nodes_path_<l>``: max / min over input->output paths of the
  number of nodes labelled l on the path.
* ``in_<l>`` / ``out_<l>``: neighbours of the input / output node labelled l.
* ``out_deg_<l>``: mean over all graph nodes (input and output included) of the number of
  successors labelled l; ``in_deg_<l>``: the same with predecessors.

Every module has exactly one entry and one exit op, so the paths are a series-parallel DP over
the tree (series: add; parallel: max/min), and the degree sums are sums over tree edges weighted
by each node's multiplicity (the product of the k of the branching(4)/(8) it sits inside). Cost
is linear in the tree size, independent of the copies.

Legacy mode (``legacy_output_id=True``)
---------------------------------------
Reproduces the paper's output-id collision (seed_system.md §6.3, bug 10.8), assuming the tree
carries the ids the paper's sampler gives a freshly sampled tree that has not been encoded before:

1. Ids: the root is 1; nodes are expanded in pre-order, and when a nonterminal is expanded its
   children get the next consecutive ids (max id so far + 1, + 2, ...) in child order. Our own
   ``Node.uid`` is not used (it is not rewound on backtracking).
2. Copies: the paper copies each branching(4)/(8) inner subtree k times; copy 0 keeps the
   original ids and copies 1..k-1 get fresh ids above the tree's maximum id. The first fresh id
   always lands on a module (nonterminal) node, so every id that can collide belongs to the
   all-first-copies instance of an original node.
3. P is the last op (the root's exit: it never lies inside a copied subtree). The output node
   takes id(P) + 1 = X. If no terminal has id X (X is a nonterminal or does not exist), the graph
   is the correct one. Otherwise that terminal's copy-0 instance *is* the output node: it loses
   its label (so it contributes to no ``<l>`` feature), the separate output node and the edge
   P -> output do not exist, and the edge P-X is added unless X already feeds P. Edge directions
   follow node insertion order, so the new edge points X -> P (X is visited before P).
   Consequences, exactly as in the paper's code:
   * the node count is one less (the degree means divide by n_terminals + 1);
   * ``max/min_nodes_path_<l>`` count over input->X paths, X excluded;
   * ``out_<l>`` counts X's neighbours: its data-flow predecessors and successors (all copies
     where X fans out to or in from a branching(4)/(8)), plus P;
   * X's in- and out-edges no longer count towards X's label's degree sums, P -> output no
     longer counts towards P's label's ``in_deg``, and the new X -> P edge counts towards P's
     label's ``out_deg``;
   * ``cnt_<l>`` and ``in_<l>`` are unchanged (the entry op always has a smaller id than P).
Not reproduced: the paper renumbered the population tree's inner subtrees on each encoding
(``copy_subtree`` side effect), so re-encoding an individual, or encoding a mutant or a
hand-numbered seed, could give different ids there.
"""
from __future__ import annotations

import re

import numpy as np

from surrogates.encodings.base import Encoder

MODULE_LABELS = {"sequential": "sequential_module", "branching": "branching_module",
                 "routing": "routing_module", "computation": "computation_module"}

GRAF_LABELS: tuple[str, ...] = (
    "sequential_module", "branching_module", "routing_module", "computation_module",
    "clone_tensor2", "group_dim2s1d", "group_dim2s2d", "group_dim2s3d",
    "clone_tensor4", "group_dim4s1d", "group_dim4s2d", "group_dim4s3d",
    "clone_tensor8", "group_dim8s1d", "group_dim8s2d", "group_dim8s3d",
    "add_tensors", "cat_tensors1d2t", "cat_tensors2d2t", "cat_tensors3d2t",
    "dot_product", "scaled_dot_product",
    "cat_tensors1d4t", "cat_tensors2d4t", "cat_tensors3d4t",
    "cat_tensors1d8t", "cat_tensors2d8t", "cat_tensors3d8t",
    "identity", "permute21", "permute132", "permute312", "permute321", "permute213", "permute231",
    "im2col1k1s0p", "im2col1k2s0p", "im2col3k1s1p", "im2col3k2s1p", "im2col4k4s0p",
    "im2col8k8s0p", "im2col16k16s0p",
    "col2im",
    "linear16", "linear32", "linear64", "linear128", "linear256", "linear512", "linear1024",
    "linear2048", "norm", "leakyrelu", "softmax", "learnable_positional_encoding",
)
GRAF_FAMILIES: tuple[str, ...] = ("cnt", "max_nodes_path", "min_nodes_path", "in", "out",
                                  "out_deg", "in_deg")
GRAF_COLUMNS: list[str] = [f"{family}_{label}" for family in GRAF_FAMILIES for label in GRAF_LABELS]

N_LABELS = len(GRAF_LABELS)
LABEL_INDEX = {label: i for i, label in enumerate(GRAF_LABELS)}
(_CNT, _MAX, _MIN, _IN, _OUT, _OUT_DEG, _IN_DEG) = (i * N_LABELS for i in range(len(GRAF_FAMILIES)))

_ARGS = r"\(([^)]*)\)"
_PATTERNS = [
    (re.compile(r"im2col" + _ARGS), lambda a: "im2col{}k{}s{}p".format(*a)),
    (re.compile(r"clone" + _ARGS), lambda a: f"clone_tensor{a[0]}"),
    (re.compile(r"group" + _ARGS), lambda a: f"group_dim{a[0]}s{a[1]}d"),
    (re.compile(r"cat" + _ARGS), lambda a: f"cat_tensors{a[1]}d{a[0]}t"),
    (re.compile(r"add" + _ARGS), lambda a: "add_tensors"),
    (re.compile(r"perm" + _ARGS), lambda a: "permute" + "".join(a[1:])),
    (re.compile(r"linear" + _ARGS), lambda a: f"linear{a[0]}"),
]
_PLAIN = {"identity": "identity", "norm": "norm", "softmax": "softmax", "col2im": "col2im",
          "relu": "leakyrelu", "pos_enc": "learnable_positional_encoding",
          "dot_product": "dot_product", "dot_product(scaled)": "scaled_dot_product"}


def translate_name(name: str) -> str:
    """Our terminal op name -> the ES-style GRAF label (may be outside ``GRAF_LABELS``)."""
    if name in _PLAIN:
        return _PLAIN[name]
    for pattern, fmt in _PATTERNS:
        match = pattern.fullmatch(name)
        if match:
            return fmt([part.strip() for part in match.group(1).split(",")])
    raise ValueError(f"GRAF: no label for operation {name!r}")


_OFF_VOCABULARY = -1
_label_cache: dict[str, int] = {}


def _label_index(op) -> int:
    """Vocabulary index of a node's op; ``_OFF_VOCABULARY`` for a known op with no column."""
    if not op.is_terminal:
        return LABEL_INDEX[MODULE_LABELS[op.kind]]
    idx = _label_cache.get(op.name)
    if idx is None:
        idx = LABEL_INDEX.get(translate_name(op.name), _OFF_VOCABULARY)
        _label_cache[op.name] = idx
    return idx


# --------------------------------------------------------------------------- path DP helpers
# A path profile is {label index: count}; absent labels count 0. Profiles are never mutated.
def _plus(*profiles: dict) -> dict:
    out = dict(profiles[0])
    for prof in profiles[1:]:
        for key, val in prof.items():
            out[key] = out.get(key, 0) + val
    return out


def _pmax(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, val in b.items():
        if val > out.get(key, 0):
            out[key] = val
    return out


def _pmin(a: dict, b: dict) -> dict:
    return {key: min(val, b[key]) for key, val in a.items() if key in b}


def sampler_ids(nodes) -> dict:
    """The ids the paper's sampler gives a fresh tree (``nodes`` in pre-order, root first)."""
    ids = {nodes[0]: 1}
    counter = 1
    for node in nodes:
        for child in node.children:
            counter += 1
            ids[child] = counter
    return ids


def graf_features(nodes, legacy_output_id: bool = False) -> np.ndarray:
    """The 385 GRAF values of a derivation tree given as its pre-order node list."""
    feats = np.zeros(len(GRAF_COLUMNS), dtype=np.float64)
    root = nodes[0]

    # top-down: multiplicity (k-fold copies), labels, counts
    mult = {root: 1}
    label = {}
    n_terminals = 0
    for node in nodes:
        m = mult[node]
        op = node.op
        li = _label_index(op)
        label[node] = li
        if li >= 0:
            feats[_CNT + li] += m
        if op.is_terminal:
            n_terminals += m
            continue
        for child in node.children:
            mult[child] = m
        if op.k > 2:
            mult[node.children[1]] = m * op.k

    out_ids = None
    collide = None  # the terminal that becomes the output node in legacy mode
    if legacy_output_id:
        ids = sampler_ids(nodes)
        out_ids = {v: k for k, v in ids.items()}

    # bottom-up: entry/exit ops, path profiles, edge sums by label
    head = [0.0] * N_LABELS  # edges into an l-labelled node (-> out_deg)
    tail = [0.0] * N_LABELS  # edges out of an l-labelled node (-> in_deg)
    info = {}
    edges = []  # (u, v, total, per u instance, per v instance)
    for node in reversed(nodes):
        op = node.op
        if op.is_terminal:
            li = label[node]
            prof = {li: 1} if li >= 0 else {}
            info[node] = (node, node, prof, prof)
            continue
        m = mult[node]
        ch = [info[c] for c in node.children]
        kind = op.kind
        if kind == "computation":
            info[node] = ch[0]
        elif kind == "sequential":
            a, b = ch
            edges.append((a[1], b[0], m, 1, 1))
            info[node] = (a[0], b[1], _plus(a[2], b[2]), _plus(a[3], b[3]))
        elif kind == "routing":
            p, a, q = ch
            edges.append((p[1], a[0], m, 1, 1))
            edges.append((a[1], q[0], m, 1, 1))
            info[node] = (p[0], q[1], _plus(p[2], a[2], q[2]), _plus(p[3], a[3], q[3]))
        elif op.k == 2:
            f, a, b, g = ch
            edges.extend(((f[1], a[0], m, 1, 1), (f[1], b[0], m, 1, 1),
                          (a[1], g[0], m, 1, 1), (b[1], g[0], m, 1, 1)))
            info[node] = (f[0], g[1], _plus(f[2], _pmax(a[2], b[2]), g[2]),
                          _plus(f[3], _pmin(a[3], b[3]), g[3]))
        else:
            k = op.k
            f, a, g = ch
            edges.append((f[1], a[0], m * k, k, 1))
            edges.append((a[1], g[0], m * k, 1, k))
            info[node] = (f[0], g[1], _plus(f[2], a[2], g[2]), _plus(f[3], a[3], g[3]))

    entry, last, pmax, pmin = info[root]
    edges.append((None, entry, 1, 1, 1))  # None: the input node
    for u, v, total, _, _ in edges:
        if u is not None and label[u] >= 0:
            tail[label[u]] += total
        if label[v] >= 0:
            head[label[v]] += total

    if legacy_output_id:
        candidate = out_ids.get(ids[last] + 1)
        if candidate is not None and candidate.op.is_terminal:
            collide = candidate

    if collide is None:
        n_nodes = n_terminals + 2
        if label[last] >= 0:
            tail[label[last]] += 1  # last -> output
            feats[_OUT + label[last]] = 1
        for key, val in pmax.items():
            feats[_MAX + key] = val
        for key, val in pmin.items():
            feats[_MIN + key] = val
    else:
        n_nodes = n_terminals + 1
        _legacy_adjust(feats, collide, last, edges, label, info, head, tail)

    if label[entry] >= 0 and entry is not collide:
        feats[_IN + label[entry]] = 1
    feats[_OUT_DEG:_OUT_DEG + N_LABELS] = np.asarray(head) / n_nodes
    feats[_IN_DEG:_IN_DEG + N_LABELS] = np.asarray(tail) / n_nodes
    return feats


def _legacy_adjust(feats, x, last, edges, label, info, head, tail) -> None:
    """Turn the correct graph's sums into the paper's graph where op ``x`` is the output."""
    lx = label[x]
    feeds_last = False
    for u, v, _, per_u, per_v in edges:
        if u is x:  # one instance of x: its per-instance out-edges
            if label[v] >= 0:
                feats[_OUT + label[v]] += per_u
            if lx >= 0:
                tail[lx] -= per_u
            feeds_last = feeds_last or v is last
        if v is x:
            if u is not None and label[u] >= 0:
                feats[_OUT + label[u]] += per_v
            if lx >= 0:
                head[lx] -= per_v
    if not feeds_last and label[last] >= 0:  # the new edge x -> last
        feats[_OUT + label[last]] += 1
        head[label[last]] += 1
    pmax, pmin = _prefix_profiles(x, info)
    for key, val in pmax.items():
        feats[_MAX + key] = val
    for key, val in pmin.items():
        feats[_MIN + key] = val


def _prefix_profiles(x, info) -> tuple[dict, dict]:
    """Max/min label counts over input -> x paths, x itself excluded."""
    chain = []
    node = x
    while node.parent is not None:
        chain.append(node)
        node = node.parent
    pmax, pmin = {}, {}
    for child in reversed(chain):
        parent = child.parent
        i = child.index
        if i == 0:
            continue
        sib = [info[c] for c in parent.children]
        kind = parent.op.kind
        if kind in ("sequential", "routing") or parent.op.k > 2:
            # a chain: everything before child i in series
            before = sib[:i]
            pmax = _plus(pmax, *(s[2] for s in before))
            pmin = _plus(pmin, *(s[3] for s in before))
        elif i < 3:  # branching(2) inner branch: after the branching fn
            pmax, pmin = _plus(pmax, sib[0][2]), _plus(pmin, sib[0][3])
        else:  # branching(2) aggregation
            pmax = _plus(pmax, sib[0][2], _pmax(sib[1][2], sib[2][2]))
            pmin = _plus(pmin, sib[0][3], _pmin(sib[1][3], sib[2][3]))
    return pmax, pmin


class GRAFEncoder(Encoder):
    """The 385 GRAF features (``GRAF_COLUMNS``); see the module docstring.

    ``legacy_output_id=True`` reproduces the paper's output-node id collision.
    """

    name = "graf"
    columns = GRAF_COLUMNS

    def __init__(self, legacy_output_id: bool = False):
        super().__init__()
        self.legacy_output_id = bool(legacy_output_id)

    def encode_one(self, arch) -> np.ndarray:
        return graf_features(arch.nodes(), self.legacy_output_id)

    def __repr__(self) -> str:
        return f"GRAFEncoder(legacy_output_id={self.legacy_output_id})"
