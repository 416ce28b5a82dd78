#!/usr/bin/env bash
# The paper's comparison in miniature, runnable on a CPU: the RE baseline (surrogate_evolution
# with random scores) vs plain regularised evolution on both embedded datasets, 2 seeds. The two
# arms share their first generation. Then:
#   python evaluate.py task=sweep sweep_dir=outputs/multirun/quick_demo
set -euo pipefail
cd "$(dirname "$0")/.."
common=(sweep_name=quick_demo dataset=mini_addnist,mini_multnist seed=0,1 logger=csv)
python search.py -m "${common[@]}" strategy=surrogate_evolution surrogate=random "$@"
python search.py -m "${common[@]}" strategy=regularised_evolution surrogate=none "$@"
