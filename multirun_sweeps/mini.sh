#!/usr/bin/env bash
# The paper's experiment in miniature, on a CPU in about 12 minutes: the four phases of paper.sh on
# the embedded datasets (mini_addnist, mini_multnist), 2 seeds, arms RE (surrogate=random), rf, tr_rf, lm:
#   1. the RE baseline;  2. its features and strings exported, one language model per dataset
#   fine-tuned on the other;  3. the rf, tr_rf and lm arms, sharing the baseline's first generation;
#   4. every run's best retrained (trainer=final) into <run>/final/;  then the report:
#   outputs/multirun/mini/report/<time>/report.md
# Smaller than the quick block, to fit in 15 minutes on 2 cores (measured: 12.4 min, 9.9 with the
# two-job line below, on a 2-core machine busy with other work): 12 iterations of population 6,
# 2 epochs per candidate; the final retraining 4 epochs (the search's 2, times 2; the paper: 16 and 64);
# the offline fine-tuning 2 epochs (the paper's 5). The commands run inside one process
# (--in-process: one interpreter and Lightning import instead of one per command).
# Rerunning the same command skips what is done and resumes the rest. Without the optional
# language-model extra (pip install -e '.[lm]') the lm arm is left out, with a line saying so.
# Extra arguments reach every Hydra command, e.g. two jobs at a time:
#   bash multirun_sweeps/mini.sh hydra/launcher=joblib hydra.launcher.n_jobs=2
# (<scope>:key=value reaches one kind of command only: python -m nas.pipeline --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m nas.pipeline --sweep mini --datasets mini_addnist,mini_multnist --seeds 0,1 \
  --arms rf,tr_rf,lm --if-lm-missing skip --in-process \
  search:search.budget=12 search:strategy.population_size=6 search:trainer.max_epochs=2 \
  final:trainer.max_epochs=4 finetune:surrogate.offline_epochs=2 \
  logger=csv "$@"
