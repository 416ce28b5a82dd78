"""Hand-designed seed architectures in the seed form (seed_system.md §2.1), written with the
paper's legacy spellings so that the seed-form parser is exercised.

Two fixes over the paper's code, which cannot build them (seed_system.md §10.9): resnet18's
identity shortcuts are ``computation[identity]`` (a bare ``identity`` is not a module), and the
MLP-Mixer's token mixing uses the seed-only ``linear(x4)`` / ``linear(x0.25)`` terminals
(width relative to the number of patches, which differs per dataset).
"""
from __future__ import annotations


def _comp(op: str) -> str:
    return f"computation[{op}]"


NORM, RELU, IDENTITY = _comp("norm"), _comp("relu"), _comp("identity")


def _seq(*modules: str) -> str:
    """Right-nested binary sequential."""
    out = modules[-1]
    for module in reversed(modules[:-1]):
        out = f"sequential[{module}, {out}]"
    return out


def _conv(kernel: int, stride: int, padding: int, width: int) -> str:
    return f"routing[im2col{kernel}k{stride}s{padding}p, computation[linear{width}], col2im]"


def _residual(body: str, shortcut: str) -> str:
    return f"branching(2)[clone(2), {body}, {shortcut}, add(2)]"


def resnet18() -> str:
    """ResNet-18 without max-pool: a stride-2 conv replaces it."""
    stem = _seq(_conv(3, 1, 1, 64), NORM, RELU, _conv(3, 2, 1, 64))
    blocks, width_in = [], 64
    for stage, width in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            body = _seq(_conv(3, stride, 1, width), NORM, RELU, _conv(3, 1, 1, width), NORM)
            shortcut = IDENTITY if stride == 1 and width_in == width else _seq(_conv(1, stride, 0, width), NORM)
            blocks.append(_seq(_residual(body, shortcut), RELU))
            width_in = width
    return _seq(stem, *blocks)


def wideresnet16_4() -> str:
    stem = _seq(_conv(3, 1, 1, 16), NORM, RELU)
    blocks = []
    for stage, width in enumerate((64, 128, 256)):
        stride = 1 if stage == 0 else 2
        body = _seq(_conv(3, stride, 1, width), NORM, RELU, _conv(3, 1, 1, width))
        blocks.append(_seq(_residual(body, _conv(1, stride, 0, width)), NORM, RELU))
        body = _seq(_conv(3, 1, 1, width), NORM, RELU, _conv(3, 1, 1, width))
        blocks.append(_seq(_residual(body, IDENTITY), NORM, RELU))
    return _seq(stem, *blocks)


_PATCH_EMBED = _seq("routing[im2col4k4s0p, computation[linear512], identity]", _comp("pos_enc"))


def vit(depth: int = 4) -> str:
    """Pre-norm ViT: 4 heads of 64, FFN 2048, width 512, 4x4 patches."""
    scores = ("branching(2)[clone(2), computation[linear64], "
              "routing[identity, computation[linear64], permute21], dot_product(scaled=True)]")
    sdpa = (f"branching(2)[clone(2), {_seq(scores, _comp('softmax'))}, computation[linear64], "
            "dot_product(scaled=False)]")
    mhsa = _seq(f"branching(4)[clone(4), {sdpa}, cat(4, 2)]", _comp("linear512"))
    ffn = _seq(_comp("linear2048"), RELU, _comp("linear512"))
    layer = _seq(_residual(_seq(NORM, mhsa), IDENTITY), _residual(_seq(NORM, ffn), IDENTITY))
    return _seq(_PATCH_EMBED, *[layer] * depth)


def mlpmixer(depth: int = 8) -> str:
    mix_patches = _seq("routing[permute21, computation[linear_x(4)], identity]", RELU,
                       "routing[identity, computation[linear_x(0.25)], permute21]")
    mix_channels = _seq(_comp("linear256"), RELU, _comp("linear512"))
    layer = _residual(_seq(NORM, _seq(mix_patches, mix_channels)), IDENTITY)
    return _seq(_PATCH_EMBED, *[layer] * depth)


SEEDS = {"resnet18": resnet18, "wideresnet16_4": wideresnet16_4, "vit": vit, "mlpmixer": mlpmixer}
