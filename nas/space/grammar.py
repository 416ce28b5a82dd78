"""The einspace PCFG of the paper's code: 11 symbols, productions and probabilities
(seed_system.md §1.2). Probabilities are renormalised after invalid options are removed.
"""
from __future__ import annotations

from nas.space import ops as O

NETWORK = "network"
MODULE = "module"
COMPUTATION_FN = "computation_fn"
PREROUTING_FN = "prerouting_fn"
POSTROUTING_FN = "postrouting_fn"


def branching_fn(k: int) -> str:
    return f"branching_fn_{k}"


def aggregation_fn(k: int) -> str:
    return f"aggregation_fn_{k}"


class Production:
    """A nonterminal production: its children's symbols and how state flows between them."""

    __slots__ = ("name", "kind", "k", "child_levels")
    is_terminal = False

    def __init__(self, name: str, kind: str, child_levels: tuple[str, ...], k: int = 0):
        self.name, self.kind, self.child_levels, self.k = name, kind, child_levels, k

    def __repr__(self) -> str:
        return self.name


SEQUENTIAL = Production("sequential", "sequential", (MODULE, MODULE))
BRANCHING = {
    2: Production("branching(2)", "branching", (branching_fn(2), MODULE, MODULE, aggregation_fn(2)), 2),
    4: Production("branching(4)", "branching", (branching_fn(4), MODULE, aggregation_fn(4)), 4),
    8: Production("branching(8)", "branching", (branching_fn(8), MODULE, aggregation_fn(8)), 8),
}
ROUTING = Production("routing", "routing", (PREROUTING_FN, MODULE, POSTROUTING_FN))
COMPUTATION = Production("computation", "computation", (COMPUTATION_FN,))
PRODUCTIONS = {p.name: p for p in (SEQUENTIAL, *BRANCHING.values(), ROUTING, COMPUTATION)}

PERMUTATIONS = ((0, 2, 1), (0, 1, 3, 2), (0, 3, 1, 2), (0, 3, 2, 1), (0, 2, 1, 3), (0, 2, 3, 1))
IM2COLS = ((1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1), (4, 4, 0), (8, 8, 0), (16, 16, 0))
LINEAR_WIDTHS = (16, 32, 64, 128, 256, 512, 1024, 2048)

IDENTITY = O.IdentityOp()
_PERMS = [O.PermOp(p) for p in PERMUTATIONS]


def _uniform(items) -> list[tuple[object, float]]:
    items = list(items)
    return [(item, 1.0 / len(items)) for item in items]


def build_options(p_computation: float) -> dict[str, list[tuple[object, float]]]:
    """Symbol -> [(production or terminal op, probability)] for a given p_computation."""
    rest = 1.0 - p_computation
    options = {
        NETWORK: [(SEQUENTIAL, 1 / 3), (BRANCHING[2], 1 / 9), (BRANCHING[4], 1 / 9),
                  (BRANCHING[8], 1 / 9), (ROUTING, 1 / 3)],
        MODULE: [(SEQUENTIAL, rest / 3), (BRANCHING[2], rest / 9), (BRANCHING[4], rest / 9),
                 (BRANCHING[8], rest / 9), (ROUTING, rest / 3), (COMPUTATION, p_computation)],
        aggregation_fn(2): _uniform([O.AddOp(2), O.CatOp(2, 1), O.CatOp(2, 2), O.CatOp(2, 3),
                                     O.DotProductOp(False), O.DotProductOp(True)]),
        PREROUTING_FN: _uniform([IDENTITY, *_PERMS, *(O.Im2ColOp(*a) for a in IM2COLS)]),
        POSTROUTING_FN: _uniform([IDENTITY, *_PERMS, O.Col2ImOp()]),
        COMPUTATION_FN: _uniform([IDENTITY, *(O.LinearOp(w) for w in LINEAR_WIDTHS), O.NormOp(),
                                  O.ReluOp(), O.SoftmaxOp(), O.PosEncOp()]),
    }
    for k in (2, 4, 8):
        options[branching_fn(k)] = _uniform([O.CloneOp(k), O.GroupOp(k, 1), O.GroupOp(k, 2), O.GroupOp(k, 3)])
    for k in (4, 8):
        options[aggregation_fn(k)] = _uniform([O.AddOp(k), O.CatOp(k, 1), O.CatOp(k, 2), O.CatOp(k, 3)])
    return options


# Seed-only terminals: parseable and kept through mutation, never sampled.
SEED_ONLY_OPS = {COMPUTATION_FN: [O.ScaledLinearOp(4), O.ScaledLinearOp(0.25)]}


def ops_by_level(options) -> dict[str, dict[str, object]]:
    """Symbol -> {name: option}, including the seed-only terminals (for parsing)."""
    table = {level: {opt.name: opt for opt, _ in opts} for level, opts in options.items()}
    for level, extra in SEED_ONLY_OPS.items():
        table[level].update({op.name: op for op in extra})
    return table
