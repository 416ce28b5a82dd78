#!/usr/bin/env bash
# einspace's mixed-seed regularised evolution: the four seed architectures (each trained once,
# copies fill the population) on the Unseen-NAS datasets, 3 seeds, the paper's settings.
set -euo pipefail
cd "$(dirname "$0")/.."
python search.py -m sweep_name=seeded_evolution experiment=paper strategy=regularised_evolution surrogate=none \
  strategy.seeds=resnet18+wideresnet16_4+vit+mlpmixer \
  dataset=addnist,multnist,language,cifartile,gutenberg,isabella,geoclassing,chesseract seed=0,1,2 "$@"
