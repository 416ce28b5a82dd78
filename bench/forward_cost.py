"""How well the counted forward cost (nas/space/cost.py) stands in for the timed forward pass.

    OMP_NUM_THREADS=1 python bench/forward_cost.py [--samples 60] [--shape 3 16 16] [--hog 1]

For the seeds and random samples of the default space on one input shape: multiply-adds and
activation elements per sample (one eval-mode pass of 2 samples) against the paper's timing
(mean of 5 grad-enabled forward passes of a batch of 256, ``measure_forward_seconds``), fitted as

    seconds per batch ~= batch x (a x multiply-adds + b x activation elements)

by least squares on log-error-free ratios (non-negative, through the origin). Prints the fit, the
rank correlation of each cost with the time, the cost of counting vs timing (ratio, same
process), and how often ``time >= limit`` and ``cost >= limit / fitted rate`` decide alike. With
``--hog N`` the timings are repeated with N busy processes: the counted cost does not move.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from nas.space import EinSpace  # noqa: E402
from nas.space.cost import forward_cost  # noqa: E402
from nas.training.checks import measure_forward_seconds  # noqa: E402

BATCH = 256


def _burn(stop) -> None:  # a busy process: another job on the machine
    x = 1.0
    while not stop.is_set():
        x = x * 1.0000001 + 1e-9


def measure(shape, samples: int, max_macs: float):
    space = EinSpace(input_shape=tuple(shape))
    archs = [(name, space.seed(name)) for name in space.seed_names()]
    archs += [(f"sample {s}", space.sample(s)) for s in range(samples)]
    rows = []
    for name, arch in archs:
        torch.manual_seed(0)
        try:
            net = space.build(arch, num_classes=10)
        except Exception as err:  # noqa: BLE001 - a bench: report and go on
            print(f"  {name}: build failed ({type(err).__name__})")
            continue
        x = torch.randn(BATCH, *shape)
        t0 = time.perf_counter()
        cost = forward_cost(net, x[:2])
        count_s = time.perf_counter() - t0
        if cost.multiply_adds > max_macs:  # would take minutes to time on one thread
            print(f"  {name}: {cost.multiply_adds / 1e6:.0f} M multiply-adds per sample, not timed")
            continue
        seconds, _ = measure_forward_seconds(net, x, passes=5)
        rows.append((name, cost.multiply_adds, cost.activation_elements, seconds, count_s, net, x))
    return rows


def fit(rows):
    """Non-negative least squares through the origin of seconds/batch on (macs, elements)."""
    a = np.array([[r[1] * BATCH, r[2] * BATCH] for r in rows])
    t = np.array([r[3] for r in rows])
    w = 1.0 / t  # relative errors: a 1 ms and a 1 s candidate weigh alike
    coef, *_ = np.linalg.lstsq(a * w[:, None], t * w, rcond=None)
    if (coef < 0).any():  # fall back to the better single term
        singles = []
        for j in range(2):
            c = float(np.sum(a[:, j] * w * t * w) / np.sum((a[:, j] * w) ** 2))
            singles.append((np.sum(((a[:, j] * c - t) * w) ** 2), j, c))
        _, j, c = min(singles)
        coef = np.zeros(2)
        coef[j] = c
    predicted = a @ coef
    return coef, predicted, t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--shape", type=int, nargs=3, default=[3, 16, 16])
    parser.add_argument("--max-macs", type=float, default=2e9, help="skip timing above this")
    parser.add_argument("--hog", type=int, default=0, help="busy processes for the load run")
    parser.add_argument("--limit", type=float, nargs="*", default=[0.05, 0.5])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"== forward cost vs forward time, shape {tuple(args.shape)}, batch {BATCH}, one thread")
    rows = measure(args.shape, args.samples, args.max_macs)
    coef, predicted, t = fit(rows)
    macs, elems = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    print(f"{len(rows)} candidates timed; forward time median {np.median(t) * 1e3:.1f} ms, max {t.max():.2f} s")
    print(f"spearman(time, multiply-adds) = {spearmanr(t, macs)[0]:.3f}; "
          f"spearman(time, activation elements) = {spearmanr(t, elems)[0]:.3f}; "
          f"spearman(time, fitted cost) = {spearmanr(t, predicted)[0]:.3f}")
    print(f"fit: seconds per batch = batch x ({coef[0]:.3e} x multiply-adds + {coef[1]:.3e} x elements)")
    ratio = predicted / t
    print(f"fitted/measured time: median {np.median(ratio):.2f}, 10-90% {np.percentile(ratio, 10):.2f}-"
          f"{np.percentile(ratio, 90):.2f}")
    for name, m, e, s, *_ in rows:
        if name.startswith("sample") is False:
            print(f"  {name:18s} {m / 1e6:9.2f} M MACs {e / 1e3:9.1f} k elements  {s * 1e3:8.1f} ms  "
                  f"fitted {BATCH * (coef[0] * m + coef[1] * e) * 1e3:8.1f} ms")
    count_s = statistics.median(r[4] for r in rows)
    print(f"counting costs {count_s * 1e3:.1f} ms median vs timing {np.median(t) * 5e3:.1f} ms "
          f"(ratio {count_s / (np.median(t) * 5):.3f})")
    for limit in args.limit:
        agree = int(np.sum((t >= limit) == (predicted >= limit)))
        print(f"limit {limit:g} s: timed rejects {int(np.sum(t >= limit))}, counted rejects "
              f"{int(np.sum(predicted >= limit))}, decisions agree {agree}/{len(t)}")
    if args.hog:
        stop = mp.Event()
        hogs = [mp.Process(target=_burn, args=(stop,)) for _ in range(args.hog)]
        for h in hogs:
            h.start()
        try:
            loaded = np.array([measure_forward_seconds(r[5], r[6], passes=5)[0] for r in rows])
            recount = np.array([forward_cost(r[5], r[6][:2]).multiply_adds for r in rows])
        finally:
            stop.set()
            for h in hogs:
                h.join()
        print(f"with {args.hog} busy process(es): time loaded/idle median {np.median(loaded / t):.2f}, "
              f"max {np.max(loaded / t):.2f}; counted multiply-adds changed for "
              f"{int(np.sum(recount != macs))}/{len(rows)}")
        for limit in args.limit:
            print(f"limit {limit:g} s: timed rejects idle {int(np.sum(t >= limit))} vs loaded "
                  f"{int(np.sum(loaded >= limit))}; counted rejects {int(np.sum(predicted >= limit))} both")


if __name__ == "__main__":
    main()
