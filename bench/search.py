"""Search benchmark (issue 4): where the wall time of the default search goes, and its peak memory.

    OMP_NUM_THREADS=1 python bench/search.py [overrides ...]      # e.g. search.budget=60

Runs `python search.py`'s default configuration (plus any Hydra overrides) in-process in a
temporary directory, then splits the wall time per iteration into sampling/mutation, encoding,
prediction and surrogate fitting (all proposals, trained or not: the strategy's timers), training
(build + checks + fit of every candidate, from the archive) and bookkeeping (everything else:
archive, checkpoints, logging, figures, strategy logic). Target: all but training < 5% of the wall
time with the random surrogate.
"""
from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from nas.search.runner import SearchRunner
from nas.training import evaluate_candidate  # noqa: F401  (import cost is start-up, not per iteration)

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def main(overrides: list[str]) -> None:
    torch.set_num_threads(1)
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="search", overrides=["logger=csv", "search.progress=false",
                                                      "search.first_generation=null", *overrides])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        runner = SearchRunner(cfg, Path(tmp) / "run")
        result = runner.run()
        total = time.perf_counter() - start
        wall = result["wall_seconds"]  # the search itself: from the restored state to result.json
        records = runner.archive.records
        timings = runner.strategy.timings
    # every proposal's sampling/encoding/prediction and every refit (trained or not), from the strategy
    parts = {key: timings.get(key, 0.0) for key in ("sample", "encode", "predict", "fit")}
    parts["train"] = sum(r["seconds"].get("train", 0.0) for r in records)
    parts["bookkeeping"] = wall - sum(parts.values())
    iterations = result["iterations"]
    print(f"default search: {cfg.dataset.name}, {cfg.strategy.name}-{cfg.surrogate.name}, budget {cfg.search.budget}, "
          f"population {cfg.strategy.population_size}, {cfg.trainer.max_epochs} epochs; "
          f"{len(records)} candidates ({result['candidates']['failed']} failed) in {wall:.1f} s "
          f"(+{total - wall:.1f} s set-up: data, space, strategy)")
    print(f"{'part':<12} {'s/iteration':>12} {'share':>8}")
    for key, seconds in parts.items():
        print(f"{key:<12} {seconds / iterations:12.4f} {seconds / wall:8.2%}")
    overhead = 1 - parts["train"] / wall
    print(f"everything but training: {overhead:.2%} of the wall time (target < 5%)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main(sys.argv[1:])
