"""GRAF encoding benchmark: milliseconds per architecture (uncached), one thread.

    OMP_NUM_THREADS=1 python bench/encodings_graf.py [--samples 200] [--shape 3 28 28] [--depth 12]

Random samples: median, 90th percentile and max of the best of 3 timings per architecture, in
the correct and the legacy (output-id collision) modes. Worst case: branching(8) nested
``--depth`` levels deep, whose materialised graph would hold 8**depth copies of the innermost op
(the paper's code materialised them: a 64-node tree became 113,564 graph nodes and took 63 s).
Targets: median <= 1 ms, p90 <= 10 ms, none over 1 s.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nas.space import EinSpace  # noqa: E402
from surrogates.encodings.graf import GRAFEncoder  # noqa: E402


def best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def nested_branching8(depth: int) -> str:
    text = "computation[linear(16)]"
    for _ in range(depth):
        text = f"branching(8)[clone(8), sequential[{text}, computation[relu]], add(8)]"
    return text


def summary(ms: list[float]) -> str:
    return (f"median {np.median(ms):.3f} ms, p90 {np.percentile(ms, 90):.3f} ms, "
            f"max {max(ms):.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--shape", type=int, nargs=3, default=(3, 28, 28))
    parser.add_argument("--depth", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = EinSpace(input_shape=tuple(args.shape))

    start = time.perf_counter()
    archs = [space.sample(seed) for seed in range(args.samples)]
    sizes = [a.num_nodes for a in archs]
    print(f"sampled {len(archs)} architectures on {tuple(args.shape)} in "
          f"{time.perf_counter() - start:.1f} s; tree nodes median {np.median(sizes):.0f}, "
          f"p90 {np.percentile(sizes, 90):.0f}, max {max(sizes)}")
    for arch in archs:  # pre-order lists are cached on the architecture: time the encoding only
        arch.nodes()

    for legacy in (False, True):
        enc = GRAFEncoder(legacy_output_id=legacy)
        ms = [1e3 * best_of(lambda a=arch, e=enc: e.encode_one(a)) for arch in archs]
        worst = archs[int(np.argmax(ms))]
        print(f"GRAF legacy_output_id={legacy}: {summary(ms)} "
              f"(slowest: {worst.num_nodes} tree nodes)")

    deep = space.parse(nested_branching8(args.depth))
    deep.nodes()
    copies = 8 ** args.depth
    for legacy in (False, True):
        enc = GRAFEncoder(legacy_output_id=legacy)
        ms = 1e3 * best_of(lambda e=enc: e.encode_one(deep))
        print(f"worst case, branching(8) nested {args.depth} deep ({deep.num_nodes} tree nodes, "
              f"{copies:.3g} copies of the innermost op), legacy_output_id={legacy}: {ms:.3f} ms")


if __name__ == "__main__":
    main()
