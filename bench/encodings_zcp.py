"""Benchmark: the 7 zero-cost proxies vs 7 forward+backward passes of the same batch.

    python bench/encodings_zcp.py              # wideresnet16_4 + 20 samples, batch 256
    python bench/encodings_zcp.py --n 5 --batch 64

One thread. Input 3x28x28: mini_addnist is 16x16, so its example batch is bilinearly resized
to 28x28 (the full AddNIST is not needed for timing). The baseline is one timed
forward+backward (cross-entropy, train mode, after one untimed warm-up pass) times 7; the
proxies are ``proxies.compute_proxies`` on the 7 paper proxies, what ``ZCPEncoder.encode_one``
runs (build excluded: the seeded network is built first). ``--per-proxy`` also times each
proxy computed alone by ``compute_proxies`` (slow: grasp alone is ~6 F+B on wideresnet16_4).
The machine is shared: one F+B sample per network makes single ratios noisy.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data import create_datamodule  # noqa: E402
from nas.space import EinSpace  # noqa: E402
from surrogates.encodings import proxies as P  # noqa: E402


def fwd_bwd_ms(net, x, y) -> float:
    net.zero_grad(set_to_none=True)
    start = time.perf_counter()
    F.cross_entropy(net(x), y).backward()
    return 1e3 * (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--n", type=int, default=20, help="random samples")
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--seed-arch", default="wideresnet16_4")
    ap.add_argument("--per-proxy", action="store_true", help="also time each proxy separately")
    args = ap.parse_args()
    torch.set_num_threads(1)

    dm = create_datamodule("mini_addnist")
    dm.setup()
    x, y = dm.example_batch(args.batch)
    x = F.interpolate(x, size=(args.size, args.size), mode="bilinear", align_corners=False)
    space = EinSpace(input_shape=(3, args.size, args.size))
    archs = [(args.seed_arch, space.seed(args.seed_arch))]
    archs += [(f"sample{s}", space.sample(s)) for s in range(args.n)]

    print(f"batch {len(x)} x {tuple(x.shape[1:])}, one thread; ms")
    print(f"{'arch':16s} {'params':>10s} {'7xF+B':>10s} {'proxies':>10s} {'ratio':>6s}  nan")
    ratios, total_p, total_b = [], 0.0, 0.0
    for label, arch in archs:
        torch.manual_seed(0)
        net = space.build(arch, 20)
        fwd_bwd_ms(net, x, y)  # warm-up
        base = 7 * fwd_bwd_ms(net, x, y)
        torch.manual_seed(0)
        fresh = space.build(arch, 20)
        events = __import__("collections").Counter()
        start = time.perf_counter()
        scores = P.compute_proxies(lambda fresh=fresh: fresh, x, y, P.PROXIES, events=events)
        ms = 1e3 * (time.perf_counter() - start)
        nans = [k for k, v in scores.items() if v != v]
        ratios.append(ms / base)
        total_p, total_b = total_p + ms, total_b + base
        n_params = sum(p.numel() for p in net.parameters())
        print(f"{label:16s} {n_params:10d} {base:10.1f} {ms:10.1f} {ms / base:6.2f}  {','.join(nans)}")
        if args.per_proxy:
            parts = []
            for name in P.PROXIES:
                t0 = time.perf_counter()
                P.compute_proxies(fresh, x, y, [name])
                parts.append(f"{name}={1e3 * (time.perf_counter() - t0):.0f}")
            print("    separate: " + " ".join(parts))
    rs = sorted(ratios)
    print(f"ratio proxies / 7xF+B: median {rs[len(rs) // 2]:.2f}, max {rs[-1]:.2f}, "
          f"total {total_p / total_b:.2f} ({total_p / 1e3:.1f} s vs {total_b / 1e3:.1f} s)")


if __name__ == "__main__":
    main()
