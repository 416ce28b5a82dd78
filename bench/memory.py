"""Memory benchmark (issue 8): the one memory estimate and the one limit.

The search space estimates the peak memory of one SGD training step from the tree alone
(``nas.space.tree.memory_bytes``; ``EinSpace.memory_bytes``), and sampling, mutation and the
trainer all compare it with one limit (``space.mem_limit_mb``, ``nas.space.config.MEM_LIMIT_MB``).
This prints

1. the estimate for the four seed architectures on every dataset shape at batch 256, against
   the limit (they must all pass);
2. the estimate against what autograd really saves, measured on the built network with
   ``nas.training.checks.estimate_memory_bytes`` (saved-tensor hooks on a 2-sample forward pass,
   scaled; the same formula), for the seeds and random samples;
3. with ``--rss``: the estimate against the measured peak resident memory of real training steps
   (forward, backward, SGD step) on the CPU, per sample: each batch size runs in a fresh process
   whose peak RSS (VmHWM) is reset right before the measured step; the slope between two batch
   sizes removes the process's fixed overhead (libraries, allocator caches). Big tensors are
   returned to the OS on free (``MALLOC_MMAP_THRESHOLD_``), so RSS follows the live memory.

    OMP_NUM_THREADS=1 python bench/memory.py [--samples 25] [--rss] [--rss-samples 6]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import torch

from nas.space import EinSpace
from nas.space.config import MEM_LIMIT_MB
from nas.training.checks import estimate_memory_bytes

MB = 2**20
SEEDS = ("resnet18", "wideresnet16_4", "vit", "mlpmixer")
# Unseen-NAS input shapes (conf/dataset/*.yaml), CIFAR-10 and the embedded mini datasets
SHAPES = {
    "addnist/multnist": (3, 28, 28), "language": (1, 24, 24), "cifartile/geoclassing": (3, 64, 64),
    "gutenberg": (1, 27, 18), "isabella": (1, 64, 128), "chesseract": (12, 18, 18),
    "cifar10": (3, 32, 32), "mini_addnist": (3, 16, 16),
}


def seed_table(batch: int) -> None:
    print(f"== seed architectures: estimated training memory at batch {batch} (MB); "
          f"limit {MEM_LIMIT_MB:.0f} MB")
    print(f"{'dataset':>22} {'shape':>12} " + " ".join(f"{name:>15}" for name in SEEDS))
    worst = 0.0
    for name, shape in SHAPES.items():
        space = EinSpace(shape)
        values = [space.memory_bytes(space.seed(seed), batch) / MB for seed in SEEDS]
        worst = max(worst, *values)
        print(f"{name:>22} {'x'.join(map(str, shape)):>12} " + " ".join(f"{v:15.0f}" for v in values))
    print(f"largest: {worst:.0f} MB = {worst / MEM_LIMIT_MB:.0%} of the limit")


def autograd_check(samples: int, max_params: float) -> None:
    print(f"\n== estimate vs autograd's saved tensors (seeds + {samples} samples per shape, "
          f"backbones <= {max_params:g} parameters)")
    ratios = []
    for name, shape in SHAPES.items():
        space = EinSpace(shape)
        archs = [space.seed(seed) for seed in SEEDS] + [space.sample(s) for s in range(samples)]
        for arch in archs:
            if arch.num_params > max_params:
                continue
            net = space.build(arch, 10)
            measured = estimate_memory_bytes(net, torch.randn(2, *shape), 256)
            ratios.append(space.memory_bytes(arch, 256) / measured)
        print(f"{name:>22}: done ({len(ratios)} so far)", flush=True)
    ratios.sort()
    print(f"tree estimate / autograd-measured, n={len(ratios)}: min {ratios[0]:.2f}  "
          f"p10 {ratios[len(ratios) // 10]:.2f}  median {statistics.median(ratios):.2f}  "
          f"p90 {ratios[9 * len(ratios) // 10]:.2f}  max {ratios[-1]:.2f}")


def probe(shape: tuple[int, ...], which: str, batch: int) -> None:
    """Child process: peak RSS of one SGD step (after a warm-up step) and the estimate."""

    def status(key: str) -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(key)

    torch.set_num_threads(1)
    space = EinSpace(shape)  # the same default space as the parent picked the sample from
    arch = space.seed(which) if which in SEEDS else space.sample(int(which))
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    before = status("VmRSS")
    net = space.build(arch, 10)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=3e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    step()
    with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM to the current RSS
        fh.write("5")
    step()
    measured = status("VmHWM") - before + x.numel() * 4
    print(f"PROBE {measured} {space.memory_bytes(arch, batch)}", flush=True)


def rss_check(shapes: list[str], samples: int, batches: tuple[int, int]) -> None:
    print(f"\n== estimate vs measured peak RSS of a training step, per sample "
          f"(slope between batch {batches[0]} and {batches[1]}, CPU, one thread)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
    ratios = []
    for name in shapes:
        shape = SHAPES[name]
        space = EinSpace(shape)
        # random samples big enough for the slope to stand out of the allocator's noise
        # (>= 4 MB per sample), small enough for this machine, with at most 50M parameters
        picks = list(SEEDS)
        for s in range(400):
            if len(picks) >= len(SEEDS) + samples:
                break
            arch = space.sample(s)
            if 1024 * MB <= space.memory_bytes(arch, 256) <= 16384 * MB and arch.num_params <= 5e7:
                picks.append(str(s))
        for which in picks:
            values = []
            for batch in batches:
                out = subprocess.run([sys.executable, __file__, "--probe", "x".join(map(str, shape)), which,
                                      str(batch)], capture_output=True, text=True, env=env, timeout=900)
                line = [ln for ln in out.stdout.splitlines() if ln.startswith("PROBE")]
                if not line:
                    print(f"{name} {which}: probe failed: {out.stderr.strip()[-200:]}")
                    break
                values.append(tuple(int(v) for v in line[0].split()[1:]))
            if len(values) < 2:
                continue
            span = batches[1] - batches[0]
            measured = (values[1][0] - values[0][0]) / span / MB
            estimated = (values[1][1] - values[0][1]) / span / MB
            ratio = estimated / measured if measured > 0 else float("inf")
            ratios.append(ratio)
            print(f"{name:>22} {which:>15}: measured {measured:8.2f} MB/sample  estimated {estimated:8.2f}"
                  f"  ratio {ratio:.2f}", flush=True)
    if ratios:
        print(f"estimated / measured per sample, n={len(ratios)}: min {min(ratios):.2f}  "
              f"median {statistics.median(ratios):.2f}  max {max(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=25, help="random samples per shape (autograd check)")
    parser.add_argument("--max-params", type=float, default=5e7)
    parser.add_argument("--rss", action="store_true", help="also measure real training steps (slow)")
    parser.add_argument("--rss-shapes", nargs="+", default=["addnist/multnist", "cifartile/geoclassing"])
    parser.add_argument("--rss-samples", type=int, default=6)
    parser.add_argument("--rss-batches", type=int, nargs=2, default=(8, 32))
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(tuple(int(v) for v in args.probe[0].split("x")), args.probe[1], int(args.probe[2]))
        return
    torch.set_num_threads(1)
    seed_table(256)
    autograd_check(args.samples, args.max_params)
    if args.rss:
        rss_check(args.rss_shapes, args.rss_samples, tuple(args.rss_batches))


if __name__ == "__main__":
    main()
