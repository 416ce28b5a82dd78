"""Zero-cost proxies (surrogates/encodings/proxies.py) and the ZCP encoder (zcp.py).

Expected values are computed here with explicit numpy formulas, never by calling the code
under test.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.space import EinSpace
from nas.space.modules import DotProduct, LinearConv2d
from surrogates.encodings import proxies as P
from surrogates.encodings.zcp import ZCPEncoder

K = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    assert P.grad_norm(net, x, y) == pytest.approx(np.sqrt((G ** 2).sum()), rel=1e-10)
    assert P.snip(net, x, y) == pytest.approx(np.abs(W * G).sum(), rel=1e-10)
    assert P.plain(net, x, y) == pytest.approx((W * G).sum(), rel=1e-10)


def test_fisher_closed_form():
    net, x, y, c = _linear_case()
    expected = (0.5 * ((c["Z"] * c["dZ"]) ** 2).mean(0)).sum()
    assert P.fisher(net, x, y) == pytest.approx(expected, rel=1e-10)


def test_grasp_closed_form():
    net, x, y, c = _linear_case()
    W, G, X, Pm, n = c["W"], c["G"], c["X"], c["P"], c["n"]
    # H g for mean CE of a linear softmax model: (1/N) Σ_n (diag p_n − p_n p_nᵀ)(G x_n) x_nᵀ
    Hg = np.zeros_like(W)
    for i in range(n):
        S = np.diag(Pm[i]) - np.outer(Pm[i], Pm[i])
        Hg += np.outer(S @ (G @ X[i]), X[i]) / n
    assert P.grasp(net, x, y) == pytest.approx(-(W * Hg).sum(), rel=1e-8)


def test_jacob_cov_linear_net():
    # ∂Σout/∂x_n is the same vector (rows of W summed) for every sample: corrcoef = all ones,
    # eigenvalues N (once) and 0 (N−1 times)
    net, x, y, c = _linear_case(n=8)
    n = c["n"]
    expected = -(math.log(n + K) + 1 / (n + K) + (n - 1) * (math.log(K) + 1 / K))
    assert P.jacob_cov(net, x, y) == pytest.approx(expected, rel=1e-6)


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
    assert P.nwot(net, x) == pytest.approx(np.linalg.slogdet(Kx)[1], rel=1e-10)
    # two ReLUs add their kernels
    net2 = nn.Sequential(nn.ReLU(), nn.ReLU(), nn.Linear(d, 2))
    assert P.nwot(net2, x) == pytest.approx(np.linalg.slogdet(2 * Kx)[1], rel=1e-10)


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
    assert P.l2_norm(net) == pytest.approx(sum(float(t.detach().double().norm()) for t in w), rel=1e-10)
    n_params = 4 * 18 + 4 + 8 + 36 * 3 + 3
    assert P.params(net) == n_params
    macs = 4 * 36 * (2 * 9) + 36 * 36 * 4 + 36 * 3 * 36
    assert P.flops(net, torch.randn(5, 2, 6, 6)) == pytest.approx(macs)


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
        assert math.isnan(P.PROXY_FUNCTIONS[name](NanNet, x, y)), name
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
@pytest.fixture(scope="module")
def small():
    space = EinSpace(input_shape=(3, 8, 8))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 8, 8, generator=g)
    y = torch.randint(0, 5, (16,), generator=g)
    archs = [space.sample(s) for s in range(6)] + [space.seed("resnet18")]
    return space, x, y, archs


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
            separate = P.PROXY_FUNCTIONS[name](make, x, y)
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
    assert P.snip(net, x, target, loss_fn=F.mse_loss) == pytest.approx(np.abs(W * G).sum(), rel=1e-10)
