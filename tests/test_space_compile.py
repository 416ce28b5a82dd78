"""Compiler, seeds, switches and configuration of the search space."""
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from nas.space import EinSpace
from nas.space.modules import LinearConv2d

DATASET_SHAPES = [(3, 28, 28), (1, 24, 24), (3, 64, 64), (1, 27, 18), (1, 64, 128), (12, 18, 18), (3, 32, 32)]
SEEDS = ["resnet18", "wideresnet16_4", "vit", "mlpmixer"]
CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.mark.parametrize("shape", DATASET_SHAPES)
def test_all_seeds_build_on_every_dataset_shape(shape):
    space = EinSpace(input_shape=shape)
    for name in SEEDS:
        arch = space.seed(name)
        net = space.build(arch, num_classes=10)
        with torch.no_grad():
            features = net.backbone(torch.randn(2, *shape))
        assert tuple(features.shape[1:]) == arch.output_shape
        assert net(torch.randn(2, *shape)).shape == (2, 10)
        assert sum(p.numel() for p in net.backbone.parameters()) == arch.num_params


def test_seed_parameter_counts_and_sizes_match_the_paper():
    space = EinSpace(input_shape=(3, 32, 32))
    wrn, vit = space.seed("wideresnet16_4"), space.seed("vit")
    assert (wrn.num_params, wrn.num_nodes, wrn.output_shape) == (2_748_576, 194, (256, 8, 8))
    assert (vit.num_params, vit.num_nodes, vit.output_shape) == (10_560_000, 208, (64, 512))


def test_unknown_seed_lists_the_known_ones():
    with pytest.raises(KeyError, match="resnet18"):
        EinSpace(input_shape=(3, 28, 28)).seed("resnet50")


@pytest.mark.parametrize("arch_text", [
    "routing[im2col(3,2,1), computation[linear(16)], col2im]",
    "sequential[routing[im2col(1,1,0), computation[linear(32)], col2im], computation[relu]]",
    "branching(4)[clone(4), routing[im2col(4,4,0), computation[linear(8)], col2im], cat(4,1)]",
])
def test_fused_and_literal_convolutions_agree(arch_text):
    space = EinSpace(input_shape=(3, 28, 28))
    _assert_fused_matches_literal(space, space.parse(arch_text.replace("linear(8)", "linear(16)")))


def test_fused_resnet18_matches_literal():
    space = EinSpace(input_shape=(3, 32, 32))
    _assert_fused_matches_literal(space, space.seed("resnet18"), batch=4)


def _assert_fused_matches_literal(space, arch, batch=3):
    torch.manual_seed(1)
    literal = space.build(arch, 10, fuse=False).double().eval()
    torch.manual_seed(1)
    fused = space.build(arch, 10, fuse=True).double().eval()
    assert any(isinstance(m, LinearConv2d) for m in fused.modules())
    assert not any(isinstance(m, LinearConv2d) for m in literal.modules())
    assert sum(p.numel() for p in fused.parameters()) == sum(p.numel() for p in literal.parameters())
    x = torch.randn(batch, *space.input_shape, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(fused(x), literal(x), atol=1e-5, rtol=1e-5)
    # and in float32, training mode, with gradients
    literal, fused = literal.float().train(), fused.float().train()
    xf = x.float()
    out_l, out_f = literal(xf), fused(xf)
    assert torch.allclose(out_f, out_l, atol=1e-4, rtol=1e-4)
    out_l.sum().backward()
    out_f.sum().backward()
    grads_l = [p.grad for p in literal.parameters()]
    grads_f = [p.grad for p in fused.parameters()]
    assert all(torch.allclose(a, b, atol=1e-3, rtol=1e-3) for a, b in zip(grads_l, grads_f, strict=True))


def test_head_follows_the_backbone_rank():
    space = EinSpace(input_shape=(3, 28, 28))
    rank3 = space.build(space.parse("routing[im2col(4,4,0), computation[linear(32)], identity]"), 5)
    assert rank3.head.fc.in_features == 49  # mean over D, then linear over the 49 positions
    rank4 = space.build(space.parse("routing[im2col(3,1,1), computation[linear(32)], col2im]"), 5)
    assert rank4.head.fc.in_features == 32  # global average, then linear over channels


def test_rank3_norm_switch():
    text = "sequential[routing[im2col(4,4,0), computation[linear(32)], identity], computation[norm]]"
    paper = EinSpace(input_shape=(3, 28, 28))
    corrected = EinSpace(input_shape=(3, 28, 28), rank3_norm="layernorm")
    norm_paper = [m for m in paper.build(paper.parse(text), 3).modules() if isinstance(m, nn.BatchNorm1d)]
    norm_fixed = [m for m in corrected.build(corrected.parse(text), 3).modules() if isinstance(m, nn.LayerNorm)]
    assert norm_paper[0].num_features == 49 and paper.parse(text).num_params == 48 * 32 + 32 + 2 * 49
    assert norm_fixed[0].normalized_shape == (32,) and corrected.parse(text).num_params == 48 * 32 + 32 + 2 * 32


def test_legacy_col2im_mode_allows_one_im2col_per_path_when_sampling():
    conv = "routing[im2col(3,1,1), computation[linear(16)], col2im]"
    for legacy in (True, False):
        space = EinSpace(input_shape=(3, 28, 28), legacy_col2im_mode=legacy)
        arch = space.parse(conv)
        state = arch.root.out
        im2col = next(op for op, _ in space.options["prerouting_fn"] if op.kind == "im2col")
        allowed = im2col.check(state, space.cfg, soft=True) is None
        assert state.mode == ("col" if legacy else "im")
        assert allowed is (not legacy)
        # replay (seeds, parsed strings, mutants) never applies the mode rule
        assert im2col.check(state, space.cfg, soft=False) is None
    stacked = EinSpace(input_shape=(3, 28, 28)).parse(f"sequential[{conv}, {conv}]")
    assert stacked.output_shape == (16, 28, 28)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown EinSpace setting"):
        EinSpace(input_shape=(3, 28, 28), depth_limt=3)
    with pytest.raises(ValueError, match="rank3_norm"):
        EinSpace(input_shape=(3, 28, 28), rank3_norm="groupnorm")
    with pytest.raises(ValueError, match="input_shape"):
        EinSpace(input_shape=(28, 28))


def test_architectures_from_another_input_shape_are_refused():
    a = EinSpace(input_shape=(3, 28, 28))
    b = EinSpace(input_shape=(1, 24, 24))
    with pytest.raises(ValueError, match="check_shapes=False"):
        b.build(a.seed("vit"), 10)


def test_space_config_instantiates_with_hydra():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["dataset=mini_multnist", "space.legacy_col2im_mode=false"])
    space = instantiate(cfg.space)
    assert isinstance(space, EinSpace)
    assert space.input_shape == tuple(cfg.dataset.input_shape)
    assert space.cfg.legacy_col2im_mode is False and space.cfg.p_computation == 0.32
