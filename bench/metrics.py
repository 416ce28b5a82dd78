"""surrogates.metrics on scipy vs the hand-written numpy version it replaced (issue 10 §1).

    python bench/metrics.py [--repeats 20]

The previous implementation is read from git (commit 2c4eefc, the last one with it) into a module
in this process, so both run on the same data and machine. Prints seconds per call (median of the
repeats), the ratio new/old, and the largest difference between the two results, for
n = 300 (a search's archive) and n = 30,000 (a large transfer table), with ties on both sides
(accuracies rounded to 1/1000, as validation accuracies are).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

from surrogates import metrics as new

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "2c4eefc"
FUNCTIONS = ("kendall_tau", "spearman", "pearson", "rank_metrics")


def old_module() -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:surrogates/metrics.py"], cwd=ROOT,
                            capture_output=True, text=True)
    if source.returncode != 0:
        sys.exit(f"bench/metrics.py needs the git history (commit {OLD_COMMIT}): {source.stderr.strip()}")
    module = types.ModuleType("metrics_before_scipy")
    exec(compile(source.stdout, "metrics_before_scipy.py", "exec"), module.__dict__)  # noqa: S102
    return module


def seconds(fn, *args, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    old = old_module()
    rng = np.random.default_rng(0)
    for n in (300, 30_000):
        true = np.round(rng.uniform(0.0, 1.0, n), 3)
        pred = np.round(true + rng.normal(0.0, 0.2, n), 3)
        print(f"== n = {n}")
        for name in FUNCTIONS:
            f_old, f_new = getattr(old, name), getattr(new, name)
            t_old = seconds(f_old, pred, true, repeats=args.repeats)
            t_new = seconds(f_new, pred, true, repeats=args.repeats)
            a, b = f_old(pred, true), f_new(pred, true)
            diff = max(abs(a[k] - b[k]) for k in a) if isinstance(a, dict) else abs(a - b)
            print(f"  {name:13s} old {t_old * 1e3:8.3f} ms  scipy {t_new * 1e3:8.3f} ms  "
                  f"ratio {t_new / t_old:5.2f}  max |difference| {diff:.1e}")


if __name__ == "__main__":
    main()
