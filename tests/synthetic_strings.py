"""Synthetic architecture strings whose accuracy is a simple function of the string, and search
run directories made of them, for the language-model tests (no search, no training)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OPS = ["linear(64)", "relu", "norm", "softmax", "identity"]


def _leaf(rng, op):
    return op + "{'out_feature_shape': [" + f"{int(rng.choice([16, 64, 256]))}, {int(rng.choice([32, 64]))}" + "]}"


def _module(rng, depth):
    kind = "computation" if depth >= 3 else rng.choice(["computation", "sequential", "routing", "branching"])
    if kind == "computation":
        return f"computation[{_leaf(rng, OPS[int(rng.integers(len(OPS)))])}]"
    if kind == "sequential":
        return f"sequential[{_module(rng, depth + 1)}, {_module(rng, depth + 1)}]"
    if kind == "routing":
        return f"routing[{_leaf(rng, 'perm(0,2,1)')}, {_module(rng, depth + 1)}, {_leaf(rng, 'perm(0,2,1)')}]"
    return (f"branching(2)[{_leaf(rng, 'clone(2)')}, {_module(rng, depth + 1)}, {_module(rng, depth + 1)}, "
            f"{_leaf(rng, 'add')}]")


def synthetic_archive(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Long-form strings in einspace's grammar; accuracy = the share of computation layers that are
    linear (a simple function of the string that a mean-pooled encoder can read)."""
    rng = np.random.default_rng(seed)
    texts = [_module(rng, 0) for _ in range(n)]
    return texts, np.array([t.count("linear(") / t.count("computation[") for t in texts])


def write_string_run(run_dir: str | Path, dataset: str, seed: int, n: int, data_seed: int,
                     scale: float = 1.0, offset: float = 0.0, failed_every: int = 0) -> Path:
    """A search run directory (experiment.json + archive.jsonl) of ``n`` synthetic candidates with
    val_acc = offset + scale * share of linear layers; every ``failed_every``-th one trained to 0
    (status zero_acc), and one candidate rejected before training (too_slow, no accuracy)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    texts, acc = synthetic_archive(n, data_seed)
    records = []
    for i, (text, value) in enumerate(zip(texts, acc, strict=True)):
        failed = failed_every and i % failed_every == failed_every - 1
        records.append({"index": i, "arch": text, "status": "zero_acc" if failed else "ok",
                        "val_acc": 0.0 if failed else round(float(offset + scale * value), 6)})
    records.insert(1, {"index": n, "arch": texts[0], "status": "too_slow", "val_acc": None})
    (run_dir / "archive.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "experiment.json").write_text(json.dumps({"dataset": {"name": dataset}, "seed": seed}))
    return run_dir
