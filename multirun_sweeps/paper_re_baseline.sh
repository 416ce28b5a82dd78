#!/usr/bin/env bash
# The paper's RE baseline: surrogate-filtered evolution with random scores on the eight
# Unseen-NAS datasets and CIFAR-10, 3 seeds, the paper's settings (population 100, 300 iterations,
# 16 epochs). Needs the datasets under $NAS_DATA_DIR. On SLURM append e.g.
#   hydra/launcher=submitit_slurm hydra.launcher.partition=<p> hydra.launcher.gpus_per_node=1
set -euo pipefail
cd "$(dirname "$0")/.."
python search.py -m sweep_name=paper_re_baseline experiment=paper \
  dataset=addnist,multnist,language,cifartile,gutenberg,isabella,geoclassing,chesseract,cifar10 \
  seed=0,1,2 strategy=surrogate_evolution surrogate=random "$@"
