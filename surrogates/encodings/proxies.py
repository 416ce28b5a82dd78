"""Zero-cost proxies on an untrained network and one batch (seed_system.md §6.2).

Written from the definitions (Abdelfattah et al. 2021, "Zero-cost proxies for lightweight
NAS"; Mellor et al. 2021 for jacob_cov and nwot; NAS-Bench-Suite-Zero for the extras); no code
was taken from the zero-cost-nas / foresight package. (Over 400 lines because a quarter of it is
this record of the decisions; the code is one production path, ``compute_proxies``.)

One way to compute them
-----------------------
``compute_proxies(net_factory, x, y, names, ...)`` computes all requested proxies from ONE forward
of one fresh network (a factory ``() -> nn.Module`` is called, a module is deep-copied, so the
caller's weights are never touched), on the device of ``x`` (the network must be there too; every
score comes back as a Python float). What is shared:

- one forward in train mode (BatchNorm on batch statistics, as in find_measures) with the input
  requiring grad and forward hooks that keep each scored layer's output (fisher), the binary
  ReLU codes (nwot) and the multiply-add count (flops);
- one backward of the loss ``autograd.grad(L, weights + layer outputs)`` gives ∂L/∂W for
  grad_norm, snip, plain (and grasp's g) and ∂L/∂act for fisher. With grasp requested it runs
  with ``create_graph=True`` so that the same gradient is grasp's differentiable ∇L;
- a second backward of Σ outputs w.r.t. the input only, on the retained graph (jacob_cov);
- the double backward ∂(g_detached · ∇L)/∂W = H g (grasp);
- synflow needs different weights (|W|, float64, BatchNorm removed, ones input, batch 1), so it
  runs on its own deep copy taken *before* the shared forward (untouched init): ``synflow``.

This is exact, not an approximation: in train mode BatchNorm's output does not depend on its
running statistics, so a second forward of the same fresh net (what the originals do, one deep
copy per measure) computes the same function. ``tests/proxy_oracle.py`` computes every proxy
separately, one fresh network each and its gradients through ``torch.func``, and
``tests/test_encodings_zcp.py`` checks every shared value against it.

Scored layers
-------------
``nn.Linear`` and convolution weights (``nn.Conv1d/2d/3d``), and einspace's fused convolution
``LinearConv2d`` whose ``.linear`` weight is the kernel (scored exactly like a Conv2d), the
classifier head's Linear included. Biases, norms and positional encodings are not scored.
Per-layer scores are summed into one scalar.

Decisions (where the original is ambiguous or fragile)
------------------------------------------------------
* fisher has two rules, chosen by ``fisher_mode`` (``conf/encoding/zcp.yaml``):

  - ``"foresight"`` (default): what the original's ``find_measures`` returned, computed on the
    *literal* network it built (im2col -> nn.Linear -> col2im, no convolutions). At each scored
    layer's output, p = act ⊙ ∂L/∂act; the channel is **dim 1** of the output: for rank > 2 the
    per-channel sum runs over dims 2.. (for a Linear on (B, S, D) the channels are the S
    positions, for a Linear over the last dim of (B, C, H, W) the C channels), for rank 2 p is
    used as is; each channel scores 0.5·mean_n(Σ p)²; and, because foresight broadcasts every
    channel's score to all the weights of ``weight[channel]`` before summing per-parameter
    arrays, each layer's sum is multiplied by its fan-in ``prod(weight.shape[1:])``
    (in_features, or C_in·k·k). A fused ``LinearConv2d`` is scored as its literal linear: the
    (B, H'W', c) output's dim 1 is the H'·W' positions, so the sum runs over the c output
    channels per position, times the fan-in C_in·k·k; the fused and literal builds agree.
  - ``"ours"`` (the rule used before foresight's was reproduced; kept for comparisons): the
    channel is the layer's *feature* dimension: dim 1 for convolutions (sum over the spatial
    dims), the last dim for ``nn.Linear`` (sum over all other non-batch dims), and no fan-in
    factor. It reads every layer as "per output channel", which is what Fisher pruning meant;
    foresight's dim-1 rule is only that for convolutions, and its broadcast weights layers by
    their fan-in. The rules agree only on rank-2 Linears with fan-in 1; otherwise the totals
    differ (ratio foresight/ours ≈10 for one 3x3 conv on RGB, 1 to ~1500 with median ≈12 over
    60 sampled architectures on a 3x16x16 batch, where the two rank them with Kendall τ ≈0.16),
    so a column made with one mode is not comparable with one made with the other.
  Only ``nn.Conv2d`` is a convolution to foresight; einspace builds no ``nn.Conv1d/3d``, which
  both modes score with the dim-1 rule.
* jacob_cov: eigenvalues of the (symmetric) correlation matrix with the symmetric solver
  ``torch.linalg.eigvalsh`` (real by construction); the original's ``np.linalg.eig`` can return
  tiny imaginary parts and keeps the real part, which agrees to rounding. Computed in float64.
  A sample whose input gradient is constant makes the correlation undefined: NaN.
* synflow: BatchNorm modules are replaced by ``nn.Identity`` (BatchNorm disabled); every
  parameter and floating buffer is replaced by its absolute value; net and input in float64;
  input all ones with batch 1. If the result is +inf, or if the forward overflowed (an inf in
  any module's output, seen by hooks; then the score is at least the overflowed output and
  gradients may turn NaN), the score is clipped to the
  float32 finite maximum (what the transfer scripts do); a finite score above it is clipped
  too, so the column is representable as float32. Every clip is counted as an event.
* Every other proxy returns NaN (never raises) on an exception or a non-finite value, and the
  event is counted.
* Extras: ``nwot`` hooks every ``nn.ReLU`` output (the only rectifier einspace builds; ReLU
  input > 0 iff output > 0), K = Σ_relu [c cᵀ + (1-c)(1-c)ᵀ] with c the per-sample binary
  codes, score ``slogdet(K)`` log|det| (NaN if singular). ``l2_norm`` = Σ ‖W‖₂ over scored
  layers; ``params`` = trainable parameter count; ``flops`` = multiply-adds *per sample* of
  Linear (out elements × in_features), convolutions (out elements × in_ch/groups × kernel
  volume, LinearConv2d included) and einspace's ``DotProduct`` matmul (out elements × inner
  dim); norms, activations, softmax, additions and routing are not counted.
"""
from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.space.cost import CONVOLUTIONS, arithmetic_modules, batch_size_of, multiply_adds
from nas.space.modules import LinearConv2d

PROXIES: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow")
EXTRA_PROXIES: tuple[str, ...] = ("nwot", "l2_norm", "params", "flops")
ALL_PROXIES: tuple[str, ...] = PROXIES + EXTRA_PROXIES
FISHER_MODES: tuple[str, ...] = ("foresight", "ours")  # the first is the default (module doc)

FLOAT32_MAX = float(np.finfo(np.float32).max)
JACOB_K = 1e-5

_CONV = CONVOLUTIONS
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

NetOrFactory = nn.Module | Callable[[], nn.Module]


# ------------------------------------------------------------------------------ helpers
def fresh_network(net_or_factory: NetOrFactory) -> nn.Module:
    """A network with untouched weights: a deep copy of a module, or a factory's new one."""
    net = copy.deepcopy(net_or_factory) if isinstance(net_or_factory, nn.Module) else net_or_factory()
    return net.train()


def scored_layers(net: nn.Module) -> list[tuple[nn.Module, torch.Tensor, int]]:
    """(module whose output is the layer's activation, weight, feature dim of that output).

    Linear: (module, weight, -1); convolution and ``LinearConv2d``: (module, weight, 1). The
    ``nn.Linear`` inside a ``LinearConv2d`` is scored once, through its ``LinearConv2d`` (its own
    forward never runs).
    """
    inner = {id(m.linear) for m in net.modules() if isinstance(m, LinearConv2d)}
    layers = []
    for m in net.modules():
        if isinstance(m, LinearConv2d):
            layers.append((m, m.linear.weight, 1))
        elif isinstance(m, nn.Linear) and id(m) not in inner:
            layers.append((m, m.weight, -1))
        elif isinstance(m, _CONV):
            layers.append((m, m.weight, 1))
    return layers


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [w for _, w, _ in scored_layers(net)]


def _as_float(value, name: str, events: Counter | None) -> float:
    value = float(value)
    if not math.isfinite(value):
        if events is not None:
            events[f"{name}: non-finite"] += 1
        return float("nan")
    return value


def _grads(outputs, inputs, **kw) -> list[torch.Tensor]:
    grads = torch.autograd.grad(outputs, inputs, allow_unused=True, **kw)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True)]


def _guard(name: str, fn, events: Counter | None) -> float:
    try:
        return _as_float(fn(), name, events)
    except Exception as err:  # noqa: BLE001 - a proxy never raises; the reason is counted
        if events is not None:
            events[f"{name}: {type(err).__name__}"] += 1
        return float("nan")


# ------------------------------------------------------------------------- the formulas
def _grad_norm(weights, grads) -> float:
    return sum(float(g.double().norm()) for g in grads)


def _snip(weights, grads) -> float:
    return sum(float((w.double() * g.double()).abs().sum()) for w, g in zip(weights, grads, strict=True))


def _plain(weights, grads) -> float:
    return sum(float((w.double() * g.double()).sum()) for w, g in zip(weights, grads, strict=True))


def _grasp(weights, hg) -> float:
    return -sum(float((w.double() * h.double()).sum()) for w, h in zip(weights, hg, strict=True))


def check_fisher_mode(mode: str) -> str:
    if mode not in FISHER_MODES:
        raise ValueError(f"unknown fisher_mode {mode!r}; available: {', '.join(FISHER_MODES)}")
    return mode


def _fisher_layer(module: nn.Module, weight: torch.Tensor, act: torch.Tensor, grad: torch.Tensor,
                  dim: int, mode: str) -> float:
    """One layer's fisher from its output ``act`` and ∂L/∂act (module doc, "fisher")."""
    prod = (act.detach() * grad.detach()).double()
    if mode == "ours":
        if prod.dim() > 2:
            prod = prod.movedim(dim, -1).flatten(1, -2).sum(1)
        return float(0.5 * prod.pow(2).mean(0).sum())
    if isinstance(module, LinearConv2d):
        # the literal linear's output is (B, H'W', c): channels are the positions, sum over c
        per_channel = prod.sum(1).flatten(1)
    elif prod.dim() > 2:
        per_channel = prod.flatten(2).sum(2)
    else:
        per_channel = prod
    fan_in = math.prod(weight.shape[1:])  # foresight's broadcast to weight[channel] before summing
    return float(0.5 * per_channel.pow(2).mean(0).sum()) * fan_in


def jacob_cov_score(jacobian: torch.Tensor | np.ndarray) -> float:
    """−Σ(log(v+k) + 1/(v+k)), v the eigenvalues of the per-sample correlation matrix.

    Computed with torch in float64 (torch honours ``set_num_threads``; numpy's threaded BLAS
    made this 50-100x slower on a busy 2-core machine).
    """
    jac = torch.as_tensor(jacobian).detach().cpu().to(torch.float64)
    jac = jac.reshape(len(jac), -1)
    corr = torch.corrcoef(jac)
    if not bool(torch.isfinite(corr).all()):
        return float("nan")
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + JACOB_K) + 1.0 / (v + JACOB_K)).sum())


def nwot_kernel(codes: torch.Tensor) -> torch.Tensor:
    """Σ_f [c_if c_jf + (1-c_if)(1-c_jf)] = D − Hamming(i, j), for (N, D) binary codes."""
    c = codes.reshape(len(codes), -1).float()
    d = c.shape[1]
    rows = c.sum(1, dtype=torch.float64)
    same = (c @ c.t()).double()  # exact: integer counts far below 2**24 per layer
    return 2 * same - rows[:, None] - rows[None, :] + d


def nwot_score(kernel: torch.Tensor) -> float:
    sign, logdet = torch.linalg.slogdet(kernel.double())
    return float(logdet) if float(sign) != 0 else float("nan")


def _flops_hook(counter: list):
    """Adds multiply-adds per sample (``nas.space.cost``, the trainer's forward-cost count)."""
    def hook(module, inputs, output):
        counter[0] += multiply_adds(module, inputs, output) / batch_size_of(output)
    return hook


def _hessian_grad(g, graph, weights) -> list[torch.Tensor]:
    z = sum((gi * fi).sum() for gi, fi in zip(g, graph, strict=True) if fi.requires_grad)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return [torch.zeros_like(w) for w in weights]
    return _grads(z, weights)


def _keep(store: dict, key: int):
    def hook(module, inputs, output):
        store[key] = output
    return hook


# ------------------------------------------------------------------ synflow (own copy)
def synflow(net, x, y=None, loss_fn=None, events: Counter | None = None) -> float:
    """Σ |W ⊙ ∂(Σ f(1))/∂W| on |θ| in float64, BatchNorm removed, ones input with batch 1."""
    try:
        model = synflow_network(fresh_network(net))
        ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
        seen_inf = [False]
        handles = [m.register_forward_hook(_inf_hook(seen_inf)) for m in model.modules()]
        try:
            out = model(ones)
        finally:
            for h in handles:
                h.remove()
        weights = _weights(model)
        grads = _grads(out.sum(), weights)
        score = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True))
        overflowed = seen_inf[0]
    except Exception as err:  # noqa: BLE001
        if events is not None:
            events[f"synflow: {type(err).__name__}"] += 1
        return float("nan")
    return _clip_synflow(score, overflowed, events)


def _inf_hook(flag: list):
    def hook(module, inputs, output):
        if not flag[0]:
            outs = output if isinstance(output, (list, tuple)) else [output]
            flag[0] = any(isinstance(t, torch.Tensor) and bool(torch.isinf(t).any()) for t in outs)
    return hook


def _clip_synflow(score: float, overflowed: bool, events: Counter | None) -> float:
    if overflowed or score > FLOAT32_MAX:  # +inf included
        if events is not None:
            events["synflow: overflow clipped"] += 1
        return FLOAT32_MAX
    if math.isnan(score):
        if events is not None:
            events["synflow: non-finite"] += 1
    return score


def synflow_network(net: nn.Module) -> nn.Module:
    """In place: BatchNorm → Identity, every parameter/floating buffer → |·|, float64."""
    _remove_batchnorm(net)
    with torch.no_grad():
        for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            t.abs_()
    return net.double()


def _remove_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, _BATCHNORM):
            setattr(module, name, nn.Identity())
        else:
            _remove_batchnorm(child)


def _relu_hook(kernel: torch.Tensor):
    def hook(module, inputs, output):
        kernel.add_(nwot_kernel(output.detach() > 0))
    return hook


def _l2(net) -> float:
    return sum(float(w.detach().double().norm()) for w in _weights(net))


def _params(net) -> float:
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))


# ---------------------------------------------------------------------- the shared pass
def compute_proxies(net: NetOrFactory, x: torch.Tensor, y: torch.Tensor,
                    names: Sequence[str] = PROXIES, loss_fn=F.cross_entropy,
                    events: Counter | None = None, fisher_mode: str = FISHER_MODES[0]) -> dict[str, float]:
    """Every proxy in ``names`` from one fresh network and one shared forward (see module doc).

    Returns ``{name: float}`` in the order of ``names``; NaN where a proxy failed (the reason is
    counted in ``events`` as ``"<name>: <reason>"``). Never raises for a failing network.
    """
    check_fisher_mode(fisher_mode)
    unknown = [n for n in names if n not in ALL_PROXIES]
    if unknown:
        raise ValueError(f"unknown proxies {unknown}; known: {list(ALL_PROXIES)}")
    want = set(names)
    result: dict[str, float] = {n: float("nan") for n in names}
    try:
        model = fresh_network(net)
    except Exception as err:  # noqa: BLE001
        if events is not None:
            for n in names:
                events[f"{n}: build {type(err).__name__}"] += 1
        return result

    if "synflow" in want:  # its own copy of the untouched init
        result["synflow"] = synflow(model, x, events=events)
    if "params" in want:
        result["params"] = _guard("params", lambda: _params(model), events)
    if "l2_norm" in want:
        result["l2_norm"] = _guard("l2_norm", lambda: _l2(model), events)

    shared = want & {"grad_norm", "snip", "plain", "grasp", "fisher", "jacob_cov", "nwot", "flops"}
    if shared:
        _shared_pass(model, x, y, loss_fn, want, result, events, fisher_mode)
    return {n: result[n] for n in names}


def _shared_pass(model, x, y, loss_fn, want, result, events, fisher_mode) -> None:
    layers = scored_layers(model)
    weights = [w for _, w, _ in layers]
    need_loss = want & {"grad_norm", "snip", "plain", "grasp", "fisher"}
    need_grasp, need_jacob, need_fisher = "grasp" in want, "jacob_cov" in want, "fisher" in want
    acts: dict[int, torch.Tensor] = {}
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)
    flop_counter = [0.0]
    handles = []
    if need_fisher:
        handles += [m.register_forward_hook(_keep(acts, i)) for i, (m, _, _) in enumerate(layers)]
    if "nwot" in want:
        handles += [m.register_forward_hook(_relu_hook(kernel)) for m in model.modules() if isinstance(m, nn.ReLU)]
    if "flops" in want:
        handles += [m.register_forward_hook(_flops_hook(flop_counter)) for m in arithmetic_modules(model)]

    def fail(names, err):
        for n in names:
            if n in want and events is not None:
                events[f"{n}: {type(err).__name__}"] += 1

    # one forward
    try:
        inp = x.detach().clone().requires_grad_(need_jacob)
        if need_loss or need_jacob:
            out = model(inp)
            loss = loss_fn(out, y) if need_loss else None
        else:
            with torch.no_grad():
                out = model(inp)
    except Exception as err:  # noqa: BLE001
        fail(("grad_norm", "snip", "plain", "grasp", "fisher", "jacob_cov", "nwot", "flops"), err)
        return
    finally:
        for h in handles:
            h.remove()
    if "nwot" in want:
        result["nwot"] = _guard("nwot", lambda: nwot_score(kernel), events)
    if "flops" in want:
        result["flops"] = _as_float(flop_counter[0], "flops", events)

    # backward of the loss: ∂L/∂W (+ ∂L/∂act for fisher), differentiable when grasp needs it
    graph = None
    if need_loss:
        keys = sorted(acts)
        try:
            grads = _grads(loss, weights + [acts[k] for k in keys],
                           create_graph=need_grasp, retain_graph=need_grasp or need_jacob)
        except Exception as err:  # noqa: BLE001
            fail(("grad_norm", "snip", "plain", "grasp", "fisher"), err)
            need_grasp = False
        else:
            graph = grads[: len(weights)]
            g = [t.detach() for t in graph]
            w = [t.detach() for t in weights]
            for name, fn in (("grad_norm", _grad_norm), ("snip", _snip), ("plain", _plain)):
                if name in want:
                    result[name] = _guard(name, lambda fn=fn: fn(w, g), events)
            if need_fisher:
                act_grads = grads[len(weights):]
                result["fisher"] = _guard("fisher", lambda: sum(
                    _fisher_layer(*layers[k][:2], acts[k], ag, layers[k][2], fisher_mode)
                    for k, ag in zip(keys, act_grads, strict=True)), events)
    acts.clear()

    # input gradients of Σ outputs on the retained graph
    if need_jacob:
        result["jacob_cov"] = _guard(
            "jacob_cov", lambda: jacob_cov_score(_grads(out.sum(), [inp], retain_graph=need_grasp)[0]), events)

    # Hessian-gradient product: ∂(g_detached · ∇L)/∂W
    if need_grasp and graph is not None:
        result["grasp"] = _guard(
            "grasp", lambda: _grasp([t.detach() for t in weights],
                                    _hessian_grad([t.detach() for t in graph], graph, weights)), events)
