"""Independent oracles for the zero-cost proxies (tests only): one function per proxy, each on its
own fresh network, with its gradients from ``torch.func`` (``functional_call`` with ``grad`` and
``vjp``) instead of the hooks and ``torch.autograd.grad`` calls of the one production path,
``surrogates.encodings.proxies.compute_proxies`` (the encoder's shared pass).

``tests/test_encodings_zcp.py`` checks these against closed forms, then every value of the shared
pass against them. What a proxy *is* comes from the production module on purpose: which layers are
scored (``scored_layers``), the jacob_cov and nwot scores of a Jacobian or kernel, and synflow's
|θ| network; each is checked against explicit formulas on its own.
"""
from __future__ import annotations

import copy
import math
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vjp

from nas.space.cost import arithmetic_modules, batch_size_of, multiply_adds
from nas.space.modules import LinearConv2d
from surrogates.encodings import proxies as P


def _fresh(net) -> nn.Module:
    """A fresh network in train mode whose BatchNorms keep no running statistics: torch.func cannot
    transform their in-place updates, and in train mode the output does not depend on them."""
    model = (copy.deepcopy(net) if isinstance(net, nn.Module) else net()).train()
    replace_all_batch_norm_modules_(model)
    return model


def _guarded(name, fn, events: Counter | None) -> float:
    """NaN (counted) on an exception or a non-finite value, like the production proxies."""
    try:
        value = fn()
        value = float(value.detach() if isinstance(value, torch.Tensor) else value)
    except Exception as err:  # noqa: BLE001
        if events is not None:
            events[f"{name}: {type(err).__name__}"] += 1
        return float("nan")
    if not math.isfinite(value):
        if events is not None:
            events[f"{name}: non-finite"] += 1
        return float("nan")
    return value


def _functional_loss(model, x, y, loss_fn):
    """(loss of the scored weights as a pure function, the scored weights by parameter name)."""
    names = {id(p): n for n, p in model.named_parameters()}
    scored = [names[id(w)] for _, w, _ in P.scored_layers(model)]
    state = {**{n: p.detach() for n, p in model.named_parameters()}, **dict(model.named_buffers())}

    def loss(weights):
        return loss_fn(functional_call(model, {**state, **weights}, (x,)), y)

    return loss, {n: state[n] for n in scored}


def _weight_grads(net, x, y, loss_fn):
    loss, weights = _functional_loss(_fresh(net), x, y, loss_fn)
    return weights, grad(loss)(weights)


def grad_norm(net, x, y, loss_fn=F.cross_entropy, events=None) -> float:
    def run():
        _, g = _weight_grads(net, x, y, loss_fn)
        return sum(torch.linalg.vector_norm(t.double()) for t in g.values())
    return _guarded("grad_norm", run, events)


def snip(net, x, y, loss_fn=F.cross_entropy, events=None) -> float:
    def run():
        w, g = _weight_grads(net, x, y, loss_fn)
        return sum(torch.sum(torch.abs(w[n].double() * g[n].double())) for n in w)
    return _guarded("snip", run, events)


def plain(net, x, y, loss_fn=F.cross_entropy, events=None) -> float:
    def run():
        w, g = _weight_grads(net, x, y, loss_fn)
        return sum(torch.sum(w[n].double() * g[n].double()) for n in w)
    return _guarded("plain", run, events)


def grasp(net, x, y, loss_fn=F.cross_entropy, events=None) -> float:
    """−Σ W ⊙ (H g): the Hessian-vector product as the vjp of the gradient function (H symmetric)."""
    def run():
        loss, w = _functional_loss(_fresh(net), x, y, loss_fn)
        g, hvp = vjp(grad(loss), w)
        (hg,) = hvp({n: t.detach() for n, t in g.items()})
        return -sum(torch.sum(w[n].double() * hg[n].double()) for n in w)
    return _guarded("grasp", run, events)


def _fisher_channels(prod: torch.Tensor, module: nn.Module, dim: int, mode: str) -> torch.Tensor:
    """act ⊙ ∂L/∂act summed to (batch, channel) under either rule (proxies module doc)."""
    if prod.dim() <= 2:
        return prod
    if mode == "ours":
        keep = dim % prod.dim()
        return prod.sum(dim=[d for d in range(1, prod.dim()) if d != keep])
    if isinstance(module, LinearConv2d):  # the literal linear's channels are the positions
        return prod.sum(dim=1).reshape(len(prod), -1)
    return prod.sum(dim=list(range(2, prod.dim())))


def fisher(net, x, y, loss_fn=F.cross_entropy, events=None, mode: str = P.FISHER_MODES[0]) -> float:
    """∂L/∂act as the gradient of a zero offset added to every scored layer's output."""
    P.check_fisher_mode(mode)

    def run():
        model = _fresh(net)
        layers = P.scored_layers(model)

        def loss(offsets):
            acts = {}

            def hook(i):
                def add(module, inputs, output):
                    acts[i] = output
                    return output + offsets[i]
                return add

            handles = [m.register_forward_hook(hook(i)) for i, (m, _, _) in enumerate(layers)]
            try:
                return loss_fn(model(x), y), acts
            finally:
                for h in handles:
                    h.remove()

        with torch.no_grad():
            _, shapes = loss({i: 0.0 for i in range(len(layers))})
        offsets = {i: torch.zeros_like(a) for i, a in shapes.items()}
        act_grads, acts = grad(loss, has_aux=True)(offsets)
        total = 0.0
        for i, (module, weight, dim) in enumerate(layers):
            if i not in acts:
                continue
            channels = _fisher_channels((acts[i] * act_grads[i]).detach().double(), module, dim, mode)
            fan_in = math.prod(weight.shape[1:]) if mode == "foresight" else 1
            total += float(0.5 * channels.pow(2).mean(0).sum()) * fan_in
        return total
    return _guarded("fisher", run, events)


def jacob_cov(net, x, y=None, loss_fn=None, events=None) -> float:
    def run():
        model = _fresh(net)
        out, pullback = vjp(model, x.detach().clone())
        return P.jacob_cov_score(pullback(torch.ones_like(out))[0])
    return _guarded("jacob_cov", run, events)


def synflow(net, x, y=None, loss_fn=None, events=None) -> float:
    def run():
        model = P.synflow_network(_fresh(net))
        names = {id(p): n for n, p in model.named_parameters()}
        state = {**{n: p.detach() for n, p in model.named_parameters()}, **dict(model.named_buffers())}
        w = {names[id(t)]: state[names[id(t)]] for _, t, _ in P.scored_layers(model)}
        ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
        g = grad(lambda ws: functional_call(model, {**state, **ws}, (ones,)).sum())(w)
        return sum(torch.sum(torch.abs(w[n] * g[n])) for n in w)
    return _guarded("synflow", run, events)


def _observe(model: nn.Module, modules, hook, x: torch.Tensor) -> None:
    """One no-grad forward with ``hook`` on ``modules``."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()


def nwot(net, x, y=None, loss_fn=None, events=None) -> float:
    """log|det K|, K[i, j] = Σ_relu (units where samples i and j agree on being active)."""
    def run():
        model, codes = _fresh(net), []
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        _observe(model, relus, lambda m, i, o: codes.append((o > 0).reshape(len(o), -1)), x)
        c = torch.cat(codes, dim=1).double()
        kernel = c @ c.T + (1 - c) @ (1 - c).T
        return torch.linalg.slogdet(kernel).logabsdet if torch.linalg.det(kernel) != 0 else float("nan")
    return _guarded("nwot", run, events)


def l2_norm(net, x=None, y=None, loss_fn=None, events=None) -> float:
    return _guarded("l2_norm", lambda: sum(torch.linalg.vector_norm(w.detach().double())
                                           for _, w, _ in P.scored_layers(_fresh(net))), events)


def params(net, x=None, y=None, loss_fn=None, events=None) -> float:
    return _guarded("params", lambda: sum(p.numel() for p in _fresh(net).parameters() if p.requires_grad), events)


def flops(net, x, y=None, loss_fn=None, events=None) -> float:
    def run():
        model, total = _fresh(net), [0.0]

        def count(module, inputs, output):
            total[0] += multiply_adds(module, inputs, output) / batch_size_of(output)

        _observe(model, arithmetic_modules(model), count, x)
        return total[0]
    return _guarded("flops", run, events)


PROXY_FUNCTIONS = {
    "grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher, "jacob_cov": jacob_cov,
    "plain": plain, "synflow": synflow, "nwot": nwot, "l2_norm": l2_norm, "params": params, "flops": flops,
}
