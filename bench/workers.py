"""Workers benchmark (issue 13 §4): candidates per minute with search.workers=1 and =2, and the
share of the workers' time spent outside training.

    python bench/workers.py [--budget 40] [--epochs 16] [overrides ...]

Runs ``python search.py`` on the embedded mini_addnist with the paper's 16 epochs once per worker
count, each in a fresh output folder (one thread per worker; run it on an idle machine). The
default strategy is random search: its candidates do not depend on results, so every worker
count trains the same architectures and the ratio measures the workers alone
(``--strategy surrogate_evolution`` runs the RE baseline arm, whose later candidates depend on
the completion order, so the runs train different architectures). The time per candidate of the
architectures both runs trained is compared too (how much two candidates at once slow each other).
Reports, per run: wall time of the command and of the search (result.json ``wall_seconds``, from
the restored state to the result), candidates and trained iterations per minute of search wall
time, and the time outside training: ``1 - sum(train seconds) / (workers x search wall)``, i.e.
every second a worker was not training a candidate (start-up, waiting for the main process,
idle at the end of the initial population or of the budget). Targets: >= 1.7x candidates per
minute with 2 workers; < 5% outside training with 2 workers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(workers: int, strategy: str, budget: int, epochs: int, overrides: list[str], root: Path) -> dict:
    output = root / f"workers-{workers}"
    command = [sys.executable, str(REPO / "search.py"), f"strategy={strategy}", "surrogate=random",
               "encoding=none", f"search.budget={budget}",
               f"trainer.max_epochs={epochs}", f"search.workers={workers}", "logger=none",
               "search.progress=false", "search.first_generation=null", f"paths.output_dir={output}", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    command_wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"workers={workers} failed:\n{done.stderr[-3000:]}")
    run_dir, = (output / "search" / "mini_addnist" / f"{strategy}-random-none").glob("seed=*")
    result = json.loads((run_dir / "result.json").read_text())
    records = [json.loads(line) for line in (run_dir / "archive.jsonl").read_text().splitlines()]
    wall = result["wall_seconds"]
    train = sum(r["seconds"].get("train", 0.0) for r in records)
    return {"workers": workers, "command_wall_s": command_wall, "search_wall_s": wall,
            "candidates": len(records), "iterations": result["iterations"],
            "candidates_per_min": len(records) / wall * 60, "iterations_per_min": result["iterations"] / wall * 60,
            "train_s": train, "outside_training": 1 - train / (workers * wall),
            "train_by_arch": {(r["index"], r["arch"]): r["seconds"].get("train", 0.0) for r in records}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--strategy", default="random_search")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        rows = [run(w, args.strategy, args.budget, args.epochs, overrides, Path(tmp)) for w in args.workers]
    base = rows[0]
    print(f"mini_addnist, {args.strategy}, budget {args.budget}, {args.epochs} epochs, "
          f"one thread per worker, {os.cpu_count()} cores")
    print(f"{'workers':>7} {'command s':>9} {'search s':>8} {'cand.':>5} {'cand/min':>8} {'iter/min':>8} "
          f"{'speed-up':>8} {'train s':>8} {'outside training':>16}")
    for row in rows:
        print(f"{row['workers']:>7} {row['command_wall_s']:>9.1f} {row['search_wall_s']:>8.1f} {row['candidates']:>5} "
              f"{row['candidates_per_min']:>8.2f} {row['iterations_per_min']:>8.2f} "
              f"{row['candidates_per_min'] / base['candidates_per_min']:>7.2f}x {row['train_s']:>8.1f} "
              f"{row['outside_training']:>15.1%}")
    for row in rows[1:]:
        shared = [key for key in row["train_by_arch"] if key in base["train_by_arch"]]
        if shared:
            slower = sum(row["train_by_arch"][k] for k in shared) / sum(base["train_by_arch"][k] for k in shared)
            print(f"workers={row['workers']}: the {len(shared)} candidates both runs trained took {slower:.2f}x "
                  f"as long each as with workers={base['workers']}")
    print(json.dumps([{k: v for k, v in row.items() if k != "train_by_arch"} for row in rows]))


if __name__ == "__main__":
    main()
