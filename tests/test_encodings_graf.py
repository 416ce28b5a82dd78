"""GRAF encoder: columns, hand-computed values, the legacy output-id collision, failures, cache,
and agreement with a literal (materialised, networkx) reference on sampled architectures."""
from __future__ import annotations

import functools
import time

import networkx as nx
import numpy as np
import pytest

from nas.space import EinSpace
from nas.space import grammar as G
from surrogates.encodings import ENCODERS, Encoder, create_encoder, list_encoders
from surrogates.encodings.graf import (
    GRAF_COLUMNS,
    GRAF_FAMILIES,
    GRAF_LABELS,
    MODULE_LABELS,
    GRAFEncoder,
    translate_name,
)

SPACE = EinSpace(input_shape=(3, 28, 28))

ROUTING_SOFTMAX = "routing[im2col(3,2,1), computation[softmax], col2im]"
BRANCH4 = "branching(4)[clone(4), computation[relu], add(4)]"
SEQ_BRANCH4 = "sequential[branching(4)[clone(4), computation[relu], add(4)], computation[linear(16)]]"
ROUTING_BRANCH2 = ("routing[im2col(3,1,1), branching(2)[clone(2), computation[linear(16)], "
                   "computation[linear(16)], add(2)], col2im]")


def features(text: str, legacy: bool = False) -> dict[str, float]:
    """The non-zero features of an architecture as a dict."""
    row = GRAFEncoder(legacy_output_id=legacy).encode([SPACE.parse(text)])[0]
    return {c: float(v) for c, v in zip(GRAF_COLUMNS, row, strict=True) if v != 0}


def assert_features(got: dict, expected: dict) -> None:
    assert set(got) == set(expected), (sorted(set(got) - set(expected)), sorted(set(expected) - set(got)))
    for key, val in expected.items():
        assert got[key] == pytest.approx(val), key


# --------------------------------------------------------------------------- columns
def test_columns_count_and_order():
    assert len(GRAF_LABELS) == 55 and len(set(GRAF_LABELS)) == 55
    assert len(GRAF_COLUMNS) == 385 and len(set(GRAF_COLUMNS)) == 385
    assert GRAF_FAMILIES == ("cnt", "max_nodes_path", "min_nodes_path", "in", "out", "out_deg", "in_deg")
    assert GRAF_COLUMNS[:5] == ["cnt_sequential_module", "cnt_branching_module", "cnt_routing_module",
                                "cnt_computation_module", "cnt_clone_tensor2"]
    assert GRAF_COLUMNS[54] == "cnt_learnable_positional_encoding"
    assert GRAF_COLUMNS[55] == "max_nodes_path_sequential_module"
    assert GRAF_COLUMNS[110] == "min_nodes_path_sequential_module"
    assert GRAF_COLUMNS[-4:] == ["in_deg_norm", "in_deg_leakyrelu", "in_deg_softmax",
                                 "in_deg_learnable_positional_encoding"]
    for label in GRAF_LABELS:
        for family in GRAF_FAMILIES:
            assert f"{family}_{label}" in GRAF_COLUMNS
    # in-family label order
    assert GRAF_LABELS[16:22] == ("add_tensors", "cat_tensors1d2t", "cat_tensors2d2t", "cat_tensors3d2t",
                                  "dot_product", "scaled_dot_product")
    assert GRAF_LABELS[28:35] == ("identity", "permute21", "permute132", "permute312", "permute321",
                                  "permute213", "permute231")
    assert GRAF_LABELS[42] == "col2im" and GRAF_LABELS[43] == "linear16"


def test_vocabulary_is_the_translated_grammar():
    """Labels = translated options of the grammar symbols in the paper's dict order, deduplicated."""
    options = G.build_options(0.32)
    order = [G.MODULE, *(G.branching_fn(k) for k in (2, 4, 8)),
             *(G.aggregation_fn(k) for k in (2, 4, 8)), G.PREROUTING_FN, G.POSTROUTING_FN,
             G.COMPUTATION_FN]
    labels: list[str] = []
    for symbol in order:
        for opt, _ in options[symbol]:
            name = MODULE_LABELS[opt.kind] if not opt.is_terminal else translate_name(opt.name)
            if name not in labels:
                labels.append(name)
    assert tuple(labels) == GRAF_LABELS


def test_translation():
    assert translate_name("im2col(16,16,0)") == "im2col16k16s0p"
    assert translate_name("cat(4,2)") == "cat_tensors2d4t"
    assert translate_name("group(8,3)") == "group_dim8s3d"
    assert translate_name("perm(0,3,1,2)") == "permute312"
    assert translate_name("perm(0,2,1)") == "permute21"
    assert translate_name("relu") == "leakyrelu"
    assert translate_name("dot_product(scaled)") == "scaled_dot_product"
    assert translate_name("linear(x4)") == "linearx4"  # off-vocabulary
    with pytest.raises(ValueError):
        translate_name("conv(3)")


# --------------------------------------------------------------------------- hand-computed values
def test_hand_computed_branching4_sequential():
    # input -> clone(4) -> 4 x relu -> add(4) -> linear(16) -> output: 7 ops + 2 = 9 nodes.
    # Edges: in->clone, clone->relu x4, relu->add x4, add->lin, lin->out.
    # out_deg_l = #edges into l / 9; in_deg_l = #edges out of l / 9.
    expected = {
        "cnt_sequential_module": 1, "cnt_branching_module": 1, "cnt_computation_module": 5,
        "cnt_clone_tensor4": 1, "cnt_leakyrelu": 4, "cnt_add_tensors": 1, "cnt_linear16": 1,
        **{f"{f}_{lb}": 1 for f in ("max_nodes_path", "min_nodes_path")
           for lb in ("clone_tensor4", "leakyrelu", "add_tensors", "linear16")},
        "in_clone_tensor4": 1, "out_linear16": 1,
        "out_deg_clone_tensor4": 1 / 9, "out_deg_leakyrelu": 4 / 9, "out_deg_add_tensors": 4 / 9,
        "out_deg_linear16": 1 / 9,
        "in_deg_clone_tensor4": 4 / 9, "in_deg_leakyrelu": 4 / 9, "in_deg_add_tensors": 1 / 9,
        "in_deg_linear16": 1 / 9,
    }
    assert_features(features(SEQ_BRANCH4), expected)
    # sampler ids: seq 1; branching 2, comp 3; clone 4, comp 5, add 6; relu 7; linear 8.
    # The output takes id 9, which nobody has: legacy = correct.
    assert_features(features(SEQ_BRANCH4, legacy=True), expected)


ROUTING_BRANCH2_COUNTS = {
    "cnt_routing_module": 1, "cnt_branching_module": 1, "cnt_computation_module": 2,
    "cnt_im2col3k1s1p": 1, "cnt_clone_tensor2": 1, "cnt_linear16": 2, "cnt_add_tensors": 1,
    "cnt_col2im": 1,
}


def test_hand_computed_routing_branching2():
    # input -> im2col -> clone(2) -> {linear, linear} -> add -> col2im -> output: 6 ops + 2 = 8.
    expected = {
        **ROUTING_BRANCH2_COUNTS,
        **{f"{f}_{lb}": 1 for f in ("max_nodes_path", "min_nodes_path")
           for lb in ("im2col3k1s1p", "clone_tensor2", "linear16", "add_tensors", "col2im")},
        "in_im2col3k1s1p": 1, "out_col2im": 1,
        "out_deg_im2col3k1s1p": 1 / 8, "out_deg_clone_tensor2": 1 / 8, "out_deg_linear16": 2 / 8,
        "out_deg_add_tensors": 2 / 8, "out_deg_col2im": 1 / 8,
        "in_deg_im2col3k1s1p": 1 / 8, "in_deg_clone_tensor2": 2 / 8, "in_deg_linear16": 2 / 8,
        "in_deg_add_tensors": 1 / 8, "in_deg_col2im": 1 / 8,
    }
    assert_features(features(ROUTING_BRANCH2), expected)


def test_hand_computed_routing_branching2_legacy():
    # ids: routing 1; im2col 2, branching 3, col2im 4; clone 5, comp 6, comp 7, add 8;
    # linear 9; linear 10. Last op col2im (4) -> output id 5 = the clone, which becomes the
    # output. Nodes in insertion order 1(in) 2(im2col) 5(out) 9 10(linears) 8(add) 4(col2im): 7.
    # Edges 1->2, 2->5, 5->9, 5->10, 9->8, 10->8, 8->4 and the new 5->4.
    expected = {
        **ROUTING_BRANCH2_COUNTS,
        "max_nodes_path_im2col3k1s1p": 1, "min_nodes_path_im2col3k1s1p": 1,  # paths to node 5
        "in_im2col3k1s1p": 1,
        "out_im2col3k1s1p": 1, "out_linear16": 2, "out_col2im": 1,  # neighbours of node 5
        "out_deg_im2col3k1s1p": 1 / 7, "out_deg_linear16": 2 / 7, "out_deg_add_tensors": 2 / 7,
        "out_deg_col2im": 2 / 7,
        "in_deg_im2col3k1s1p": 1 / 7, "in_deg_linear16": 2 / 7, "in_deg_add_tensors": 1 / 7,
    }
    assert_features(features(ROUTING_BRANCH2, legacy=True), expected)


def test_legacy_collision_softmax_becomes_output():
    counts = {"cnt_routing_module": 1, "cnt_computation_module": 1, "cnt_im2col3k2s1p": 1,
              "cnt_softmax": 1, "cnt_col2im": 1}
    # correct: in -> im2col -> softmax -> col2im -> out, 5 nodes
    correct = {
        **counts,
        **{f"{f}_{lb}": 1 for f in ("max_nodes_path", "min_nodes_path")
           for lb in ("im2col3k2s1p", "softmax", "col2im")},
        "in_im2col3k2s1p": 1, "out_col2im": 1,
        **{f"{f}_{lb}": 1 / 5 for f in ("out_deg", "in_deg") for lb in ("im2col3k2s1p", "softmax", "col2im")},
    }
    assert_features(features(ROUTING_SOFTMAX), correct)
    # legacy: ids routing 1, im2col 2, comp 3, col2im 4, softmax 5; output id 4+1 = softmax.
    # Nodes 1, 2, 5(out), 4: edges 1->2, 2->5, 5->4 (already there: no new edge). No softmax
    # path/degree features; the col2im hangs after the output, so no col2im path either.
    legacy = {
        **counts,
        "max_nodes_path_im2col3k2s1p": 1, "min_nodes_path_im2col3k2s1p": 1,
        "in_im2col3k2s1p": 1, "out_im2col3k2s1p": 1, "out_col2im": 1,
        "out_deg_im2col3k2s1p": 1 / 4, "out_deg_col2im": 1 / 4, "in_deg_im2col3k2s1p": 1 / 4,
    }
    assert_features(features(ROUTING_SOFTMAX, legacy=True), legacy)


def test_legacy_collision_inside_copied_branch():
    # ids: branching 1; clone 2, comp 3, add 4; relu 5. Output id 4+1 = 5: the relu of copy 0
    # (copies 1-3 get fresh ids 7, 9, 11). Nodes: in, clone, 4 relus (one is the output), add: 7.
    expected = {
        "cnt_branching_module": 1, "cnt_computation_module": 4, "cnt_clone_tensor4": 1,
        "cnt_leakyrelu": 4, "cnt_add_tensors": 1,
        "max_nodes_path_clone_tensor4": 1, "min_nodes_path_clone_tensor4": 1,
        "in_clone_tensor4": 1, "out_clone_tensor4": 1, "out_add_tensors": 1,
        "out_deg_clone_tensor4": 1 / 7, "out_deg_leakyrelu": 3 / 7, "out_deg_add_tensors": 4 / 7,
        "in_deg_clone_tensor4": 4 / 7, "in_deg_leakyrelu": 3 / 7,
    }
    assert_features(features(BRANCH4, legacy=True), expected)


# --------------------------------------------------------------------------- encoder behaviour
class Broken:
    long_string = "broken"

    def nodes(self):
        raise RuntimeError("no tree")


class NotAnArchitecture:
    pass


def test_failure_gives_nan_row_and_is_counted():
    enc = GRAFEncoder()
    good = SPACE.parse(ROUTING_SOFTMAX)
    X = enc.encode([good, Broken(), NotAnArchitecture(), good])
    assert X.shape == (4, 385) and X.dtype == np.float64
    assert np.isnan(X[1]).all() and np.isnan(X[2]).all()
    assert not np.isnan(X[0]).any() and np.array_equal(X[0], X[3])
    assert enc.failures == {"RuntimeError": 1, "AttributeError": 1}
    assert enc.cache_size == 1  # failures are not cached


def test_cache_hit_not_recomputed():
    enc = GRAFEncoder()
    calls = []
    original = enc.encode_one
    enc.encode_one = lambda arch: calls.append(arch) or original(arch)
    a = SPACE.parse(ROUTING_BRANCH2)
    twin = SPACE.parse(ROUTING_BRANCH2)  # another object, same long string
    first = enc.encode_cached(a)
    assert enc.encode_cached(twin) is first
    assert not first.flags.writeable
    enc.encode([a, twin, a])
    assert len(calls) == 1
    frame = enc.encode_frame([a])
    assert list(frame.columns) == GRAF_COLUMNS and frame.shape == (1, 385)
    assert GRAFEncoder().cache_size == 0  # per instance


def test_registry():
    assert "graf" in list_encoders() and "graf" in ENCODERS
    enc = create_encoder("graf", legacy_output_id=True)
    assert isinstance(enc, Encoder) and isinstance(enc, GRAFEncoder) and enc.legacy_output_id
    assert enc.name == "graf" and enc.columns == GRAF_COLUMNS
    with pytest.raises(ValueError, match="unknown encoder"):
        create_encoder("nope")


def test_seed_only_scaled_linear_is_a_graph_node_without_column():
    # linear(x4) is a node (counts in the degree denominator) but feeds no column
    row = features("sequential[computation[linear(x4)], computation[relu]]")
    assert row["in_deg_leakyrelu"] == pytest.approx(1 / 4)  # in, x4, relu, out
    assert row["out_deg_leakyrelu"] == pytest.approx(1 / 4)
    assert "in_linear16" not in row and not any("linearx" in c for c in GRAF_COLUMNS)


# --------------------------------------------------------------------------- a literal reference
class _T:
    """A copyable tree node carrying the paper's mutable id."""

    made = 0

    def __init__(self, op, id_, children=()):
        self.op, self.id, self.children = op, id_, list(children)
        _T.made += 1
        self.key = ("node", _T.made)  # unique in correct mode


def _reference(arch, legacy: bool) -> dict[str, float]:
    """Materialise the paper's graph (k copies, node ids, nx.Graph insertion order) and apply the
    definitions literally. Only for small trees."""
    nodes = arch.nodes()
    ids = {nodes[0]: 1}
    counter = 1
    for node in nodes:  # pre-order expansion numbering
        for child in node.children:
            counter += 1
            ids[child] = counter

    def lift(node):
        return _T(node.op, ids[node], [lift(c) for c in node.children])

    root = lift(nodes[0])
    next_id = [counter + 1]

    def copy_subtree(t):
        twin = _T(t.op, t.id)
        t.id = next_id[0]
        next_id[0] += 1
        twin.children = [copy_subtree(c) for c in t.children]
        return twin

    def label(op):
        return MODULE_LABELS[op.kind] if not op.is_terminal else translate_name(op.name)

    graph = nx.Graph()
    graph.add_node(1, label="input")
    counts: dict[str, int] = {}

    def walk(t, parents):  # converts and adds to the graph, returns the exit id
        counts[label(t.op)] = counts.get(label(t.op), 0) + 1
        op = t.op
        if op.is_terminal:
            graph.add_node(t.id if legacy else t.key, label=label(op))
            for p in parents:
                graph.add_edge(p, t.id if legacy else t.key)
            return t.id if legacy else t.key
        kids = t.children
        if op.kind == "branching":
            inner = [kids[1], kids[2]] if op.k == 2 else [copy_subtree(kids[1]) for _ in range(op.k)]
            f = walk(kids[0], parents)
            exits = [walk(c, [f]) for c in inner]
            return walk(kids[-1], exits)
        last = parents
        for c in kids:
            last = [walk(c, last)]
        return last[0]

    exit_id = walk(root, [1])
    out = exit_id + 1 if legacy else "output"
    graph.add_node(out, label="output")
    graph.add_edge(exit_id, out)
    digraph = nx.DiGraph()
    digraph.add_nodes_from(graph.nodes.data())
    digraph.add_edges_from(graph.edges)
    lab = nx.get_node_attributes(graph, "label")
    (inp,) = [n for n, v in lab.items() if v == "input"]
    (outp,) = [n for n, v in lab.items() if v == "output"]
    present = set(lab.values()) - {"input", "output"}
    feats: dict[str, float] = {f"cnt_{k}": v for k, v in counts.items()}
    order = list(nx.topological_sort(digraph))
    for lb in present:
        for name, agg in (("max", max), ("min", min)):
            vals = {}
            for n in order:
                preds = list(digraph.predecessors(n))
                vals[n] = agg(vals[p] for p in preds) + (lab[n] == lb) if preds else 0
            feats[f"{name}_nodes_path_{lb}"] = vals[outp]
        n_nodes = graph.number_of_nodes()
        feats[f"out_deg_{lb}"] = sum(lab[s] == lb for n in graph for s in digraph.successors(n)) / n_nodes
        feats[f"in_deg_{lb}"] = sum(lab[p] == lb for n in graph for p in digraph.predecessors(n)) / n_nodes
    for n in graph.neighbors(inp):
        feats[f"in_{lab[n]}"] = feats.get(f"in_{lab[n]}", 0) + 1
    for n in graph.neighbors(outp):
        feats[f"out_{lab[n]}"] = feats.get(f"out_{lab[n]}", 0) + 1
    return {k: v for k, v in feats.items() if k in GRAF_COLUMNS and v != 0}


@functools.cache
def _samples() -> tuple:
    """50 random architectures, sampled once for the whole module (sampling dominates)."""
    return tuple(SPACE.sample(seed) for seed in range(50))


def _small_samples():
    return [arch for arch in _samples() if arch.num_nodes <= 60]


@pytest.mark.parametrize("legacy", [False, True])
def test_matches_literal_reference_on_samples(legacy):
    enc = GRAFEncoder(legacy_output_id=legacy)
    archs = _small_samples() + [SPACE.parse(t) for t in (ROUTING_SOFTMAX, BRANCH4, SEQ_BRANCH4, ROUTING_BRANCH2)]
    X = enc.encode(archs)
    for arch, row in zip(archs, X, strict=True):
        got = {c: float(v) for c, v in zip(GRAF_COLUMNS, row, strict=True) if v != 0}
        assert_features(got, _reference(arch, legacy))
    assert not enc.failures


def test_legacy_collisions_happen_on_samples():
    archs = list(_samples())
    correct, legacy = GRAFEncoder().encode(archs), GRAFEncoder(legacy_output_id=True).encode(archs)
    assert 0 < (np.abs(correct - legacy).sum(axis=1) > 0).sum() < len(archs)
    assert np.array_equal(correct[:, :55], legacy[:, :55])  # counts never change


def test_deterministic_and_fast_on_samples():
    archs = list(_samples())
    X1 = GRAFEncoder().encode(archs)
    times = []
    enc = GRAFEncoder()
    for arch in archs:
        start = time.perf_counter()
        row = enc.encode_one(arch)
        times.append(time.perf_counter() - start)
        assert np.array_equal(row, X1[len(times) - 1])
    assert np.isfinite(X1).all() and (X1 >= 0).all()
    assert (X1[:, :4].sum(axis=1) >= 1).all()  # at least one module
    assert np.median(times) < 0.01 and max(times) < 1.0
