"""col2im as the paper ran it: a reshape wherever L*D is a multiple of the grid's H'W'.

Reading a string accepts every such architecture (published archives load in full); sampling
and mutation keep the grammar's rule L == H'W' (their distributions are unchanged).
"""
import numpy as np
import pytest
import torch

from nas.space import EinSpace, ParseError
from nas.space.modules import Col2Im, LinearConv2d
from nas.space.ops import Col2ImOp
from nas.space.state import TensorState
from nas.space.tree import has_inexact_fold
from surrogates.encodings.graf import GRAF_COLUMNS, GRAFEncoder

# Sampled by the original on 3x28x28 and run there: 36,118 backbone parameters, output 16x1056x3.
# Its second branch, routing[perm(0,2,1), softmax, col2im], reshapes (32, 84) onto the 3x28 grid
# of im2col(1,1,0): 32 channels, where the grammar's fold would need 84 positions.
ORIGINAL = (
    "sequential(routing[perm(0,2,1,3), routing[im2col(1,1,0), sequential(sequential("
    "computation<linear(64)>, branching(2){group(2,2), routing[perm(0,2,1), routing[perm(0,2,1), "
    "sequential(routing[perm(0,2,1), routing[perm(0,2,1), routing[identity, computation<linear(1024)>, "
    "identity], identity], col2im], routing[perm(0,2,1,3), computation<norm>, perm(0,2,3,1)]), "
    "perm(0,3,1,2)], perm(0,2,1,3)], routing[perm(0,2,1), computation<softmax>, col2im], cat(2,1)}), "
    "computation<linear(16)>), perm(0,2,3,1)], perm(0,2,3,1)], computation<relu>)")
# A convolution (fused) followed by an inexact fold: (256, 49) reshaped onto 7x7.
CONV_THEN_RESHAPE = ("sequential(routing[im2col(3,1,1), computation<linear(16)>, col2im], "
                     "routing[im2col(4,4,0), routing[perm(0,2,1), computation<softmax>, identity], col2im])")


@pytest.fixture(scope="module")
def space():
    return EinSpace(input_shape=(3, 28, 28))


def test_the_original_architecture_parses_builds_and_runs(space):
    for check_shapes in (False, True):  # a short string has no annotations to check
        arch = space.parse(ORIGINAL, check_shapes=check_shapes)
        assert arch.short_string == ORIGINAL
    # our state is the per-sample shape, the batch dimension removed: (16, 1056, 3)
    assert arch.output_shape == (16, 1056, 3)
    assert arch.num_params == 36_118
    assert "col2im{'out_feature_shape': [32, 3, 28]}" in arch.long_string
    assert "cat(2,1){'out_feature_shape': [1056, 3, 28]}" in arch.long_string
    for fuse in (False, True):
        torch.manual_seed(0)
        backbone = space.build_backbone(arch, fuse=fuse)
        assert sum(p.numel() for p in backbone.parameters()) == 36_118
        with torch.no_grad():
            out = backbone(torch.randn(4, 3, 28, 28))
        assert out.shape == (4, 16, 1056, 3)
    net = space.build(arch, num_classes=10)
    logits = net(torch.randn(2, 3, 28, 28))
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert space.memory_bytes(arch, 8) > 0


def test_the_long_string_round_trips(space):
    long = space.parse(ORIGINAL, check_shapes=False).long_string
    for check_shapes in (True, False):  # our annotations are the shapes that run
        assert space.parse(long, check_shapes=check_shapes).long_string == long
    # the original's own annotation at that col2im was its inferred (84, 3, 28), not what ran
    paper_style = long.replace("col2im{'out_feature_shape': [32, 3, 28]}", "col2im{'out_feature_shape': [84, 3, 28]}")
    with pytest.raises(ParseError, match="check_shapes=False"):
        space.parse(paper_style)
    assert space.parse(paper_style, check_shapes=False).long_string == long


def test_graf_encodes_it(space):
    arch = space.parse(ORIGINAL, check_shapes=False)
    row = np.asarray(GRAFEncoder().encode([arch])[0], dtype=float)
    assert row.shape == (len(GRAF_COLUMNS),) and np.isfinite(row).all()
    assert row[GRAF_COLUMNS.index("cnt_col2im")] == 2


def test_col2im_module_is_the_papers_reshape():
    torch.manual_seed(0)
    for positions, features in ((84, 32), (32, 84), (12, 7)):  # exact, transposed, 84 elements
        x = torch.randn(2, positions, features)
        assert torch.equal(Col2Im(3, 28)(x), x.permute(0, 2, 1).reshape(2, -1, 3, 28))
    x = torch.randn(2, 84, 5)
    assert torch.equal(Col2Im(3, 28)(x), x.transpose(1, 2).reshape(2, 5, 3, 28))  # an exact fold


def test_sampling_and_mutation_rules_stay_strict(space):
    op, cfg = Col2ImOp(), space.cfg
    inexact = TensorState((1, 32, 84), mode="col", last_im_shape=(3, 28))
    assert op.check(inexact, cfg, True) and op.check(inexact, cfg, False)
    assert op.check_lenient(inexact, cfg) is None
    assert op.infer(inexact, cfg).shape == (1, 32, 3, 28)
    exact = TensorState((1, 84, 32), mode="col", last_im_shape=(3, 28))
    assert op.check(exact, cfg, True) is None and op.infer(exact, cfg).shape == (1, 32, 3, 28)
    ragged = TensorState((1, 5, 7), mode="col", last_im_shape=(3, 28))
    assert "cannot reshape" in op.check_lenient(ragged, cfg)
    # (784, 3) -> perm -> (3, 784) -> linear(16) -> (3, 16): 48 is not a multiple of 28x28
    ragged_text = "routing[im2col(1,1,0), routing[perm(0,2,1), computation<linear(16)>, identity], col2im]"
    with pytest.raises(ParseError, match="cannot reshape onto the last im2col's 28x28 grid") as info:
        space.parse(ragged_text)
    assert info.value.position == ragged_text.index("col2im")
    # (49, 48) -> perm -> (48, 49): the paper's reshape gives 48 channels on the 7x7 grid
    reshaped = space.parse("routing[im2col(4,4,0), routing[perm(0,2,1), computation<softmax>, identity], col2im]")
    assert reshaped.output_shape == (48, 7, 7)
    # the sampler never draws such a col2im, and mutation of sampled trees refuses it
    for seed in range(30):
        sampled = space.sample(seed)
        assert not has_inexact_fold(sampled.nodes())
        assert not has_inexact_fold(space.mutate(sampled, seed).nodes())


def test_a_leniently_read_tree_can_be_mutated(space):
    arch = space.parse(ORIGINAL, check_shapes=False)
    mutants = [space.mutate(arch, seed) for seed in range(6)]
    assert any(has_inexact_fold(m.nodes()) for m in mutants)  # replayed leniently
    for mutant in mutants:
        with torch.no_grad():
            out = space.build_backbone(mutant)(torch.randn(2, 3, 28, 28))
        assert tuple(out.shape[1:]) == mutant.output_shape


def test_fusion_applies_only_to_exact_folds(space):
    arch = space.parse(CONV_THEN_RESHAPE)
    assert arch.output_shape == (256, 7, 7)
    torch.manual_seed(3)
    literal = space.build_backbone(arch, fuse=False).double()
    torch.manual_seed(3)
    fused = space.build_backbone(arch, fuse=True).double()
    assert sum(isinstance(m, LinearConv2d) for m in fused.modules()) == 1
    x = torch.randn(2, 3, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(fused(x), literal(x), atol=1e-10)
        assert fused(x).shape == (2, 256, 7, 7)
