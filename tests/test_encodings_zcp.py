"""Zero-cost proxies (surrogates/encodings/proxies.py), their independent oracle
(tests/proxy_oracle.py) and the ZCP encoder (zcp.py).

Expected values are computed here with explicit numpy formulas, never by calling the code
under test. (Over 400 lines: one hand-computed case per proxy, eleven proxies.)
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import proxy_oracle as O
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.space import EinSpace
from nas.space.modules import DotProduct, LinearConv2d
from surrogates.encodings import proxies as P
from surrogates.encodings.zcp import ZCPEncoder

K = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


def _linear_case(n=6, d=5, k=3, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(d, k)).double()
    x = torch.randn(n, d, dtype=torch.float64)
    y = torch.randint(0, k, (n,))
    W = net[0].weight.detach().numpy().copy()
    b = net[0].bias.detach().numpy().copy()
    X = x.numpy()
    Z = X @ W.T + b
    E = np.exp(Z - Z.max(1, keepdims=True))
    Pm = E / E.sum(1, keepdims=True)
    onehot = np.eye(k)[y.numpy()]
    dZ = (Pm - onehot) / n  # ∂L/∂z for mean cross-entropy
    G = dZ.T @ X  # ∂L/∂W
    return net, x, y, dict(W=W, X=X, Z=Z, P=Pm, dZ=dZ, G=G, n=n)


# ------------------------------------------------------------------ closed-form proxies
def test_gradient_proxies_closed_form():
    net, x, y, c = _linear_case()
    W, G = c["W"], c["G"]
    assert O.grad_norm(net, x, y) == pytest.approx(np.sqrt((G ** 2).sum()), rel=1e-10)
    assert O.snip(net, x, y) == pytest.approx(np.abs(W * G).sum(), rel=1e-10)
    assert O.plain(net, x, y) == pytest.approx((W * G).sum(), rel=1e-10)


def test_fisher_closed_form():
    net, x, y, c = _linear_case()
    per_output = (0.5 * ((c["Z"] * c["dZ"]) ** 2).mean(0)).sum()
    assert O.fisher(net, x, y, mode="ours") == pytest.approx(per_output, rel=1e-10)
    # foresight broadcasts each channel's score to its in_features weights before summing
    assert O.fisher(net, x, y) == pytest.approx(c["W"].shape[1] * per_output, rel=1e-10)
    with pytest.raises(ValueError, match="fisher_mode"):
        O.fisher(net, x, y, mode="nope")


def test_grasp_closed_form():
    net, x, y, c = _linear_case()
    W, G, X, Pm, n = c["W"], c["G"], c["X"], c["P"], c["n"]
    # H g for mean CE of a linear softmax model: (1/N) Σ_n (diag p_n − p_n p_nᵀ)(G x_n) x_nᵀ
    Hg = np.zeros_like(W)
    for i in range(n):
        S = np.diag(Pm[i]) - np.outer(Pm[i], Pm[i])
        Hg += np.outer(S @ (G @ X[i]), X[i]) / n
    assert O.grasp(net, x, y) == pytest.approx(-(W * Hg).sum(), rel=1e-8)


def test_jacob_cov_linear_net():
    # ∂Σout/∂x_n is the same vector (rows of W summed) for every sample: corrcoef = all ones,
    # eigenvalues N (once) and 0 (N−1 times)
    net, x, y, c = _linear_case(n=8)
    n = c["n"]
    expected = -(math.log(n + K) + 1 / (n + K) + (n - 1) * (math.log(K) + 1 / K))
    assert O.jacob_cov(net, x, y) == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_score_against_explicit_eigenvalues():
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(7, 20))
    v = np.linalg.eigvals(np.corrcoef(jac)).real  # the original's eig, real part
    expected = -np.sum(np.log(v + K) + 1 / (v + K))
    assert P.jacob_cov_score(jac) == pytest.approx(expected, rel=1e-8)


def test_synflow_closed_form():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    W1, b1 = (np.abs(t.detach().numpy().astype(np.float64)) for t in (net[0].weight, net[0].bias))
    W2 = np.abs(net[3].weight.detach().numpy().astype(np.float64))
    before = net[0].weight.detach().clone()
    x = torch.randn(5, 3)
    h = W1 @ np.ones(3) + b1  # hidden with |θ| and a ones input; BatchNorm removed
    # R = Σ_i (W2 h + b2)_i: ∂R/∂W2[i,j] = h_j, ∂R/∂W1[j,l] = Σ_i W2[i,j]
    expected = (W2 * h[None, :]).sum() + (W1 * W2.sum(0)[:, None]).sum()
    assert P.synflow(net, x) == pytest.approx(expected, rel=1e-12)
    assert torch.equal(net[0].weight, before)  # the caller's network is untouched
    assert isinstance(net[1], nn.BatchNorm1d)


def test_synflow_overflow_is_clipped_and_counted():
    layers = [nn.Linear(10, 10) for _ in range(12)]
    for layer in layers:
        nn.init.constant_(layer.weight, 1e30)
    events = Counter()
    assert P.synflow(nn.Sequential(*layers), torch.ones(2, 10), events=events) == P.FLOAT32_MAX
    assert events["synflow: overflow clipped"] == 1
    # a finite float64 score above the float32 range is clipped too
    big = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10))
    for layer in big:
        nn.init.constant_(layer.weight, 1e25)
    assert P.synflow(big, torch.ones(1, 10)) == P.FLOAT32_MAX


def test_nwot_hand_made_codes():
    codes = np.array([[1, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 0]])
    n, d = codes.shape
    Kx = np.array([[d - np.sum(codes[i] != codes[j]) for j in range(n)] for i in range(n)], float)
    assert P.nwot_kernel(torch.tensor(codes)).numpy() == pytest.approx(Kx)
    # through the ReLU hook: the ReLU's input is the pattern (±1), so its codes are `codes`
    x = torch.tensor(2.0 * codes - 1.0, dtype=torch.float32)
    net = nn.Sequential(nn.ReLU(), nn.Linear(d, 2))
    assert O.nwot(net, x) == pytest.approx(np.linalg.slogdet(Kx)[1], rel=1e-10)
    # two ReLUs add their kernels
    net2 = nn.Sequential(nn.ReLU(), nn.ReLU(), nn.Linear(d, 2))
    assert O.nwot(net2, x) == pytest.approx(np.linalg.slogdet(2 * Kx)[1], rel=1e-10)


def test_l2_params_flops():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = LinearConv2d(nn.Linear(2 * 9, 4), in_channels=2, kernel=3, stride=1, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.dot = DotProduct(scaled=False)
            self.fc = nn.Linear(36, 3)

        def forward(self, x):
            h = self.bn(self.conv(x)).flatten(2)            # (B, 4, 36)
            a = self.dot([h.transpose(1, 2), h])             # (B, 36, 36), inner dim 4
            return self.fc(a).mean(1)                         # (B, 3)

    net = Net()
    w = [net.conv.linear.weight, net.fc.weight]
    assert O.l2_norm(net) == pytest.approx(sum(float(t.detach().double().norm()) for t in w), rel=1e-10)
    n_params = 4 * 18 + 4 + 8 + 36 * 3 + 3
    assert O.params(net) == n_params
    macs = 4 * 36 * (2 * 9) + 36 * 36 * 4 + 36 * 3 * 36
    assert O.flops(net, torch.randn(5, 2, 6, 6)) == pytest.approx(macs)


def test_scored_layers_count_linearconv_once():
    net = nn.Sequential(LinearConv2d(nn.Linear(8, 2), 2, 2, 1, 0), nn.Flatten(), nn.Linear(2 * 9, 3))
    layers = P.scored_layers(net)
    assert [type(m) for m, _, _ in layers] == [LinearConv2d, nn.Linear]
    assert layers[0][1] is net[0].linear.weight and layers[0][2] == 1 and layers[1][2] == -1


# ------------------------------------------------------------------ failures
class NanNet(nn.Module):
    def __init__(self, d=4, k=3):
        super().__init__()
        self.fc = nn.Linear(d, k)

    def forward(self, x):
        return self.fc(x) * float("nan")


def test_nan_network_gives_nan_and_counts():
    x, y = torch.randn(4, 4), torch.tensor([0, 1, 2, 0])
    events = Counter()
    scores = P.compute_proxies(NanNet, x, y, P.ALL_PROXIES, events=events)
    for name in ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow"):
        assert math.isnan(scores[name]), name
        assert sum(v for k, v in events.items() if k.startswith(name + ":")) >= 1, name
    for name in P.PROXIES:
        assert math.isnan(O.PROXY_FUNCTIONS[name](NanNet, x, y)), name
    assert scores["params"] == 15 and scores["flops"] == 12


class _FakeSpace:
    input_shape = (4,)

    def __init__(self, make):
        self.make = make

    def build(self, arch, num_classes):
        return self.make()


class _Arch:
    def __init__(self, s):
        self.long_string = s


def test_encoder_counts_failures_per_proxy_and_never_raises():
    enc = ZCPEncoder(_FakeSpace(NanNet), (torch.randn(4, 4), torch.tensor([0, 1, 2, 0])), num_classes=3)
    row = enc.encode([_Arch("a")])[0]
    assert np.isnan(row).all()
    assert all(enc.failures[n] == 1 for n in P.PROXIES)

    def broken():
        raise RuntimeError("cannot build")
    enc2 = ZCPEncoder(_FakeSpace(broken), (torch.randn(4, 4), torch.tensor([0, 1, 2, 0])), num_classes=3)
    assert np.isnan(enc2.encode([_Arch("b")])).all()
    assert enc2.failures["RuntimeError"] == 1 and enc2.cache_size == 0


# ------------------------------------------------------------------ einspace networks
def _close(a, b, rel=1e-4, abs_=1e-9):
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def test_shared_pass_equals_separate_proxies(small):
    space, x, y, archs = small
    for arch in archs:
        def make(arch=arch):
            torch.manual_seed(3)
            return space.build(arch, 5)
        shared = P.compute_proxies(make, x, y, P.ALL_PROXIES)
        for name in P.ALL_PROXIES:
            separate = O.PROXY_FUNCTIONS[name](make, x, y)
            assert _close(shared[name], separate), (name, shared[name], separate, arch.long_string[:80])


def test_fused_and_literal_convolutions_score_alike(small):
    space, x, y, _ = small
    arch = space.seed("resnet18")
    nets = []
    for fuse in (True, False):
        torch.manual_seed(5)
        nets.append(space.build(arch, 5, fuse=fuse))
    assert any(isinstance(m, LinearConv2d) for m in nets[0].modules())
    a = P.compute_proxies(nets[0], x, y, P.ALL_PROXIES)
    b = P.compute_proxies(nets[1], x, y, P.ALL_PROXIES)
    for name in P.ALL_PROXIES:
        assert _close(a[name], b[name], rel=1e-3), (name, a[name], b[name])
    ours = [P.compute_proxies(net, x, y, ["fisher"], fisher_mode="ours")["fisher"] for net in nets]
    assert _close(*ours, rel=1e-4) and not _close(ours[0], a["fisher"], rel=1e-2)


# ------------------------------------------------- fisher: the original's (foresight) rule
# The original ran foresight's fisher on the literal network (im2col -> nn.Linear -> col2im):
# at each nn.Linear/nn.Conv2d output, channel = dim 1 (sum of act*grad over dims 2..), score
# 0.5*mean_n(sum)^2 per channel, broadcast to weight.shape[1:] and summed. Below: closed forms
# in numpy on the literal build, and a hook-based re-enactment of that procedure; both are
# compared with the encoder's default (fused) build.
def _softmax_ce_grad(logits, y):
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)
    return (prob - np.eye(logits.shape[1])[y]) / len(y)  # ∂ mean CE / ∂ logits


def _np(t):
    return t.detach().numpy().astype(np.float64)


def _literal_linears(space, arch, seed, num_classes):
    torch.manual_seed(seed)
    literal = space.build(arch, num_classes, fuse=False)
    torch.manual_seed(seed)
    fused = space.build(arch, num_classes)
    lit = [m.weight for m in literal.modules() if isinstance(m, nn.Linear)]
    fus = [m.weight for m in fused.modules() if isinstance(m, nn.Linear)]
    assert len(lit) == len(fus) and all(torch.equal(a, b) for a, b in zip(lit, fus, strict=True))  # same init
    return literal, fused, [m for m in literal.modules() if isinstance(m, nn.Linear)]


def _encoder_fisher(space, x, y, arch, seed, num_classes, **kw):
    enc = ZCPEncoder(space, (x, y), num_classes=num_classes, proxies=["fisher"], seed=seed, **kw)
    return float(enc.encode([arch])[0, 0])


def _head_fisher(logits, dlogits, fan_in):
    return fan_in * (0.5 * (logits * dlogits) ** 2).mean(0).sum()  # rank 2: channels = classes


def test_fisher_foresight_single_conv_closed_form():
    space = EinSpace(input_shape=(3, 8, 8))
    arch = space.parse("routing[im2col(3,1,1), computation<linear(16)>, col2im]")
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 3, 8, 8, generator=g), torch.randint(0, 5, (12,), generator=g)
    literal, fused, (lin, head) = _literal_linears(space, arch, 7, 5)
    assert any(isinstance(m, LinearConv2d) for m in fused.modules())
    X = _np(F.unfold(x, 3, padding=1, stride=1).transpose(1, 2))    # (N, L=64, 27)
    Z = X @ _np(lin.weight).T + _np(lin.bias)                       # the linear's output (N, L, 16)
    pooled = Z.mean(1)                                              # head: mean over H, W
    logits = pooled @ _np(head.weight).T + _np(head.bias)
    dlogits = _softmax_ce_grad(logits, y.numpy())
    dZ = np.repeat((dlogits @ _np(head.weight))[:, None, :] / Z.shape[1], Z.shape[1], axis=1)
    per_position = (Z * dZ).sum(2)                                  # channel = dim 1 = the 64 positions
    conv = 27 * (0.5 * per_position ** 2).mean(0).sum()             # fan-in C*k*k = 27
    expected = conv + _head_fisher(logits, dlogits, 16)
    assert _encoder_fisher(space, x, y, arch, 7, 5) == pytest.approx(expected, rel=1e-4)
    # "ours": per output channel (sum over positions), no fan-in
    per_channel = (Z * dZ).sum(1)
    ours = (0.5 * per_channel ** 2).mean(0).sum() + (0.5 * (logits * dlogits) ** 2).mean(0).sum()
    assert _encoder_fisher(space, x, y, arch, 7, 5, fisher_mode="ours") == pytest.approx(ours, rel=1e-4)


def test_fisher_foresight_rank3_linear_closed_form():
    space = EinSpace(input_shape=(3, 8, 8))
    arch = space.parse("routing[im2col(4,4,0), computation<linear(16)>, identity]")  # (B, 4, 48) -> (B, 4, 16)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(10, 3, 8, 8, generator=g), torch.randint(0, 5, (10,), generator=g)
    _, _, (lin, head) = _literal_linears(space, arch, 3, 5)
    X = _np(F.unfold(x, 4, stride=4).transpose(1, 2))               # (N, 4, 48)
    Z = X @ _np(lin.weight).T + _np(lin.bias)                       # (N, S=4, D=16)
    h = Z.mean(2)                                                   # rank-3 head: mean over D, linear over S
    logits = h @ _np(head.weight).T + _np(head.bias)
    dlogits = _softmax_ce_grad(logits, y.numpy())
    dZ = np.repeat((dlogits @ _np(head.weight))[:, :, None] / Z.shape[2], Z.shape[2], axis=2)
    per_position = (Z * dZ).sum(2)                                  # channel = dim 1 = the S positions
    expected = 48 * (0.5 * per_position ** 2).mean(0).sum() + _head_fisher(logits, dlogits, 4)
    assert _encoder_fisher(space, x, y, arch, 3, 5) == pytest.approx(expected, rel=1e-4)


def test_fisher_foresight_linear_over_width_closed_form():
    space = EinSpace(input_shape=(3, 8, 8))
    arch = space.parse("sequential(computation<linear(16)>, computation<relu>)")  # (B,3,8,8) -> (B,3,8,16)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(10, 3, 8, 8, generator=g), torch.randint(0, 5, (10,), generator=g)
    _, _, (lin, head) = _literal_linears(space, arch, 4, 5)
    Z = _np(x) @ _np(lin.weight).T + _np(lin.bias)                  # (N, 3, 8, 16)
    R = np.maximum(Z, 0)
    logits = R.mean((2, 3)) @ _np(head.weight).T + _np(head.bias)
    dlogits = _softmax_ce_grad(logits, y.numpy())
    dR = (dlogits @ _np(head.weight))[:, :, None, None] / (8 * 16)
    dZ = dR * (Z > 0)
    per_channel = (Z * dZ).sum((2, 3))                              # channel = dim 1 = C
    expected = 8 * (0.5 * per_channel ** 2).mean(0).sum() + _head_fisher(logits, dlogits, 3)
    assert _encoder_fisher(space, x, y, arch, 4, 5) == pytest.approx(expected, rel=1e-4)


def _foresight_fisher_by_hooks(net, x, y):
    """foresight's procedure on ``net`` as built: hooks at every nn.Linear/nn.Conv2d output."""
    scores = []

    def forward_hook(module, inputs, out):
        def on_grad(grad):
            p = out.detach().double() * grad.double()
            per = p.sum(tuple(range(2, p.dim()))) if p.dim() > 2 else p
            scores.append((module, 0.5 * per.pow(2).mean(0)))
        out.register_hook(on_grad)

    net = net.train()
    handles = [m.register_forward_hook(forward_hook) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    F.cross_entropy(net(x), y).backward()
    for h in handles:
        h.remove()
    total = 0.0
    for module, per in scores:  # broadcast each channel's value to weight.shape[1:], then sum
        total += float(torch.stack([torch.full(module.weight.shape[1:], float(v), dtype=torch.float64)
                                    for v in per]).sum())
    return total


def test_fisher_foresight_equals_original_procedure_on_literal_builds(small):
    space, x, y, archs = small
    for i, arch in enumerate(archs):
        torch.manual_seed(11)
        literal = space.build(arch, 5, fuse=False)
        expected = _foresight_fisher_by_hooks(literal, x, y)
        got = _encoder_fisher(space, x, y, arch, 11, 5)
        assert _close(got, expected, rel=1e-4), (i, got, expected, arch.short_string[:80])


def test_fisher_mode_is_validated(small):
    space, x, y, _ = small
    with pytest.raises(ValueError, match="fisher_mode"):
        ZCPEncoder(space, (x, y), 5, fisher_mode="dim1")
    with pytest.raises(ValueError, match="fisher_mode"):
        P.compute_proxies(nn.Linear(4, 3), torch.randn(2, 4), torch.tensor([0, 1]), fisher_mode="x")


def test_encoder_columns_determinism_and_values(small):
    space, x, y, archs = small
    enc = ZCPEncoder(space, (x, y), num_classes=5)
    assert enc.columns == ["grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow"]
    rng_state = torch.random.get_rng_state()
    X = enc.encode(archs)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # caller's RNG untouched
    assert X.shape == (len(archs), 7) and X.dtype == np.float64
    assert np.isfinite(X).mean() >= 0.8
    assert np.isfinite(X[-1]).all()  # resnet18
    again = ZCPEncoder(space, (x, y), num_classes=5).encode(archs)
    np.testing.assert_array_equal(np.isnan(X), np.isnan(again))
    np.testing.assert_array_equal(np.nan_to_num(X), np.nan_to_num(again))
    other = ZCPEncoder(space, (x, y), num_classes=5, seed=1).encode(archs[-1:])
    assert not np.allclose(other, X[-1:])
    assert enc.cache_size == len({a.long_string for a in archs})

    extra = ZCPEncoder(space, (x, y), num_classes=5, extra=True)
    assert extra.columns[7:] == ["nwot", "l2_norm", "params", "flops"]
    Xe = extra.encode(archs[-1:])
    np.testing.assert_array_equal(Xe[:, :7], X[-1:])
    assert Xe[0, 9] == sum(p.numel() for p in space.build(archs[-1], 5).parameters())


def test_encoder_on_vit_seed():
    space = EinSpace(input_shape=(3, 16, 16))
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8) % 4
    row = ZCPEncoder(space, (x, y), num_classes=4).encode([space.seed("vit")])[0]
    assert np.isfinite(row).sum() >= 6


def test_encoder_rejects_bad_arguments(small):
    space, x, y, _ = small
    with pytest.raises(ValueError, match="unknown proxies"):
        ZCPEncoder(space, (x, y), 5, proxies=["snip", "nope"])
    with pytest.raises(ValueError, match="shape"):
        ZCPEncoder(space, (torch.randn(2, 3, 4, 4), torch.tensor([0, 1])), 5)


def test_loss_fn_is_used():
    net, x, _, c = _linear_case()
    target = torch.randn(c["n"], 3, dtype=torch.float64)
    W, X, Z = c["W"], c["X"], c["Z"]
    G = (2 * (Z - target.numpy()) / Z.size).T @ X  # ∂ mean((z − t)²) / ∂W
    assert O.snip(net, x, target, loss_fn=F.mse_loss) == pytest.approx(np.abs(W * G).sum(), rel=1e-10)
