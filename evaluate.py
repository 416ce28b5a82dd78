"""Measure finished runs (DESIGN §1.4): one ``task`` per call, each done by its own package.

    python evaluate.py task=sweep sweep_dir=outputs/multirun/paper_baselines
        Every search under sweep_dir (<dataset>/<arm>/seed=<s>/archive.jsonl): sweep_summary.{csv,md}
        (dataset x arm: best validation accuracy, mean ± standard error over seeds) and
        best_so_far.png (best-so-far curves, one panel per dataset). nas.search.aggregate.sweep_task.

    python evaluate.py task=report sweep_dir=outputs/multirun/paper [final_subdir=final]
        The sweep's report: report.md with, beside it, one CSV per table and best_so_far.png: best
        validation and final test accuracy (<run>/final/result.json) per dataset x arm (mean ± SE,
        best arm in bold), average ranks, candidates trained and failed by status, the surrogates'
        prospective Kendall tau, wall time per arm. nas.report.task.report_task.

    python evaluate.py task=features run=<search run dir> [encoding=zcp] [features_seed=0]
        The run's feature table: <run>/features.csv (id, the encoding's columns, accuracy), by
        default with exactly the settings of the search's own encoder, and a copy in
        export_dir/<dataset>_seed=<s>.csv (export_dir=null: none). A table with other settings never
        replaces features.csv: it goes to features-<encoding>-<digest>.csv.
        surrogates.feature_tables.features_task.

    python evaluate.py task=surrogate protocol=<in_run|one_to_one|leave_one_out> \\
            features_dir=<dir of <dataset>_seed=<s>.csv> predictors=[rf,xgb]
        Ranking quality of the predictors under one of the paper's protocols: results.csv,
        table_<metric>.{csv,md} (datasets x predictors, with a mean row) and table_kendall_tau.png.
        surrogates.report.surrogate_task.

    python evaluate.py task=surrogate surrogate=lm checkpoint=<train.py task=surrogate's checkpoint> \
            protocol=<in_run|one_to_one|leave_one_out|on_the_fly> [finetune=false] [data=<runs>]
        The same for a language model on the architecture strings (data=, else the *.strings.csv
        exports in features_dir). on_the_fly is the paper's: chunks of 100 in search order, fine-tune
        on chunk i (5 epochs, batch 2), score chunk i+1; finetune=false scores the checkpoint as it is.

Outputs go to outputs/evaluate/<task>/<time>/ (task=features writes its tables into the run and
export_dir, and only its log there); conf/evaluate.yaml lists every option. A missing input or an invalid option ends with
``evaluate.py: error: ...`` and exit status 1.
"""
import importlib
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

TASKS = {  # task -> "module:function(cfg, out_dir, logger)"; imported only when chosen
    "sweep": "nas.search.aggregate:sweep_task",
    "report": "nas.report.task:report_task",
    "features": "surrogates.feature_tables:features_task",
    "surrogate": "surrogates.report:surrogate_task",
}


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    if cfg.task not in TASKS:
        sys.exit(f"evaluate.py: error: unknown task {cfg.task!r}; available: {', '.join(TASKS)}")
    from nas.hydra_utils import hydra_run_dir  # imported here: `--help` stays fast
    from nas.logging import create_logger

    module, function = TASKS[cfg.task].split(":")
    task = getattr(importlib.import_module(module), function)
    out_dir = hydra_run_dir()
    # A sweep's report joins the sweep's W&B group: its folder is multirun/<sweep_name>, the group
    # of its search runs (logger.group=... wins).
    group = Path(str(cfg.sweep_dir)).name if cfg.task in ("report", "sweep") and cfg.get("sweep_dir") else None
    logger = create_logger(cfg.get("logger"), run_dir=str(out_dir), job_type="evaluate", name=f"evaluate-{cfg.task}",
                           config=OmegaConf.to_container(cfg, resolve=True), group=group)
    try:
        task(cfg, out_dir, logger)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"evaluate.py: error: {err}")
    finally:
        logger.finish()


if __name__ == "__main__":
    main()
