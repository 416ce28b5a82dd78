"""Search-space benchmark (issue 2): sampling, mutation, compile+forward, tree sizes, and
fused vs literal convolutions. One thread; ratios are measured in the same process.

    OMP_NUM_THREADS=1 python bench/space.py [--seeds 200] [--shape 3 28 28]

Reference, the paper's code on this machine: 5.4 s per sample on average, median 0.010 s,
90th percentile 17-25 s; trees of median 8 nodes, 90th percentile 38-41, max 288; over 200
seeds on 3x28x28: median 8, p90 38, mean 18.7, max 288. With the default limits
(``mem_limit_mb`` auto = 80 GiB of estimated training memory, nas/space/config.py) the tree-size
distribution must stay there: p90 within 35-45 and mean within 16-21 nodes.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nas.space import EinSpace, MutationError


def percentiles(values, qs=(50, 90, 100)):
    return {f"p{q}": float(np.percentile(values, q)) for q in qs}


def bench_sampling(space, seeds):
    times, sizes, archs = [], [], []
    for seed in seeds:
        start = time.perf_counter()
        arch = space.sample(seed)
        times.append(time.perf_counter() - start)
        sizes.append(arch.num_nodes)
        archs.append(arch)
    return times, sizes, archs


def bench_mutation(space, archs):
    done = failed = 0
    start = time.perf_counter()
    for i, arch in enumerate(archs):
        try:
            space.mutate(arch, seed=10_000 + i)
            done += 1
        except MutationError:
            failed += 1
    return done / (time.perf_counter() - start), failed


def bench_compile_forward(space, archs, batch, max_mb):
    """Compile + no-grad forward of every sample whose estimated training memory at ``batch``
    is at most ``max_mb`` (the default limit is a GPU's 80 GiB: more than this machine holds)."""
    times, failures = [], 0
    x = torch.randn(batch, *space.input_shape)
    for arch in archs:
        if space.memory_bytes(arch, batch) > max_mb * 2**20:
            continue
        start = time.perf_counter()
        try:
            net = space.build(arch, num_classes=10)
            with torch.no_grad():
                net(x)
        except RuntimeError:
            failures += 1
        times.append(time.perf_counter() - start)
    return times, failures


def bench_fused(shape, batch, repeats):
    space = EinSpace(input_shape=shape)
    arch = space.seed("resnet18")
    x = torch.randn(batch, *shape)
    result = {}
    for fuse in (False, True):
        torch.manual_seed(0)
        net = space.build(arch, 10, fuse=fuse)
        net(x).sum().backward()  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            net.zero_grad(set_to_none=True)
            net(x).sum().backward()
        result[fuse] = (time.perf_counter() - start) / repeats
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--shape", type=int, nargs=3, default=(3, 28, 28))
    parser.add_argument("--forward-batch", type=int, default=256)
    parser.add_argument("--skip-forward", action="store_true")
    parser.add_argument("--forward-max-mb", type=float, default=4096,
                        help="compile+forward only samples estimated below this (MB, at --forward-batch)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape, seeds = tuple(args.shape), range(args.seeds)

    raw = EinSpace(input_shape=shape, mem_limit_mb=None)
    times, sizes, _ = bench_sampling(raw, seeds)
    print(f"== sampling, raw grammar (mem_limit_mb=None: the paper's distribution), {args.seeds} seeds, {shape}")
    print(f"seconds/sample: mean {statistics.mean(times):.4f}  median {statistics.median(times):.5f}  "
          f"p90 {np.percentile(times, 90):.4f}  max {max(times):.3f}")
    print(f"tree nodes: median {np.median(sizes):.0f}  p90 {np.percentile(sizes, 90):.0f}  max {max(sizes)}  "
          f"mean {statistics.mean(sizes):.1f}")
    print(f"limits fired: {dict(raw.stats)}")
    print(f"vs the paper's code: {5.4 / statistics.mean(times):.1f}x faster on average, "
          f"median {statistics.median(times) * 1e3:.3f} ms (target <= 2 ms), mean target <= 0.5 s")

    space = EinSpace(input_shape=shape)
    times, sizes, archs = bench_sampling(space, seeds)
    print(f"\n== sampling with the default limits (mem_limit_mb={space.cfg.mem_limit_mb:g}: every sample "
          f"fits the memory limit), {args.seeds} seeds, {shape}")
    print(f"seconds/sample: mean {statistics.mean(times):.4f}  median {statistics.median(times):.5f}  "
          f"p90 {np.percentile(times, 90):.4f}  max {max(times):.3f}")
    p90, mean = np.percentile(sizes, 90), statistics.mean(sizes)
    print(f"tree nodes: median {np.median(sizes):.0f}  p90 {p90:.0f}  mean {mean:.1f}  max {max(sizes)}  "
          f"(original: median 8, p90 38, mean 18.7, max 288; target p90 35-45, mean 16-21: "
          f"{'ok' if 35 <= p90 <= 45 and 16 <= mean <= 21 else 'OFF TARGET'})")
    print(f"limits fired: {dict(space.stats)}")

    rate, failed = bench_mutation(space, archs)
    print(f"\n== mutation: {rate:.1f} mutations/s ({failed} of {len(archs)} gave up after "
          f"{space.cfg.mutation_tries} tries)")

    if not args.skip_forward:
        ftimes, failures = bench_compile_forward(space, archs, args.forward_batch, args.forward_max_mb)
        print(f"\n== compile + forward, batch {args.forward_batch} ({len(ftimes)} samples estimated <= "
              f"{args.forward_max_mb:g} MB): mean {statistics.mean(ftimes):.3f} s  "
              f"median {statistics.median(ftimes):.4f} s  p90 {np.percentile(ftimes, 90):.3f} s  "
              f"max {max(ftimes):.2f} s; failures {failures}/{len(ftimes)}")

    fused = bench_fused((3, 28, 28), batch=64, repeats=3)
    print(f"\n== resnet18 forward+backward, batch 64, 3x28x28: literal {fused[False]:.3f} s, "
          f"fused {fused[True]:.3f} s -> fused is {fused[False] / fused[True]:.1f}x faster (target >= 3x)")


if __name__ == "__main__":
    main()
