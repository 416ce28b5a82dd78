"""The paper's experiment as one resumable command: baseline, transfer inputs, arms, final test, report.

``bash multirun_sweeps/paper.sh`` and ``bash multirun_sweeps/mini.sh`` are one call each of

    python -m nas.pipeline --sweep <name> --datasets a,b,... --seeds 0,1,2 --arms rf,tr_rf,lm [overrides]

which runs the phases in the paper's order (``nas.pipeline.runner`` says what each launches):
(1) the RE baseline, (2) the features and strings of the baseline runs exported to
``<sweep>/transfer`` and one language model fine-tuned per target on the other datasets,
(3) the surrogate arms, sharing the baseline's first generation, (4) the final retraining and test
of every run's best architecture into ``<run>/final/``, then ``evaluate.py task=report``.

Decisions:

- **Hydra does the work, the runner only decides what is missing.** Each phase is one or a few
  Hydra multiruns of ``search.py``, ``evaluate.py`` and ``train.py`` (printed before they run, so
  any step can be rerun by hand); the overrides given pick the launcher (joblib, submitit), which
  therefore runs the searches, exports, fine-tunings and final retrainings alike.
- **Resume = skip what is done, relaunch the rest** (``nas.pipeline.plan`` defines "done" for each
  piece from the files on disk). Finished pieces start no process; unfinished searches resume from
  their checkpoints. A phase left incomplete (a failed job) stops the pipeline with one line, and
  the same command completes it. Phases 2-4 refuse to start before the phases they read are done,
  and ``tr_rf`` itself refuses to run without a file for each named source dataset.
- **Overrides**: ``key=value`` reaches every Hydra command; ``<scope>:key=value`` only those of a
  scope (``search``, ``random`` = the baseline, an arm's name, ``features``, ``finetune``,
  ``final``, ``report``), because the three scripts have different configs (``search.budget``
  exists only for ``search.py``).
- **Everything of a sweep lives under its folder** (``<paths.output_dir>/multirun/<sweep>``): the
  runs, ``transfer/``, ``finetuned/<arm>/<target>/``, ``pipeline/<step>/<time>/`` (Hydra's records
  of the non-search steps) and ``report/<time>/``.
"""
