"""``python -m nas.pipeline``: the paper's phased experiment on one sweep (see ``nas.pipeline``)."""
from __future__ import annotations

import argparse
import sys

from nas.pipeline.plan import BASELINE, PipelineError, Sweep, split_overrides
from nas.pipeline.runner import PHASES, Pipeline, language_model_missing, say

PROG = "python -m nas.pipeline"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="The paper's experiment, phased: (1) the RE baseline, (2) feature export and one "
                    "leave-one-dataset-out language model per target, (3) the surrogate arms sharing the "
                    "baseline's first generation, (4) the final retraining and test of every run's best, "
                    "then the report. Rerunning the same command skips what is finished and resumes the rest.",
        epilog="Overrides: key=value goes to every Hydra command (a launcher, paths.output_dir, logger); "
               "<scope>:key=value only to those of the scope: search (every search), random (the baseline), "
               "an arm's name (rf, tr_rf, lm, ...), features, finetune, final, report; several scopes: "
               "finetune,lm:key=value. Example: bash multirun_sweeps/mini.sh")
    p.add_argument("--sweep", required=True, help="sweep_name: the searches go to <paths.output_dir>/multirun/<sweep>")
    p.add_argument("--datasets", required=True, help="comma-separated dataset configs")
    p.add_argument("--seeds", required=True, help="comma-separated whole numbers")
    p.add_argument("--arms", default="rf,tr_rf,lm", help="phase 3's surrogates (default rf,tr_rf,lm); the "
                   "baseline (strategy=surrogate_evolution surrogate=random) always runs in phase 1")
    p.add_argument("--phases", default=",".join(PHASES), help="which phases to run (default all: 1,2,3,4,report)")
    p.add_argument("--if-lm-missing", choices=("error", "skip"), default="error",
                   help="a language-model arm without the optional .[lm] extra: stop (default) or drop the arm")
    p.add_argument("--dry-run", action="store_true", help="print the commands for what is missing; run nothing")
    p.add_argument("--concurrent", action="store_true", help="start a phase's multiruns together (phase 3's "
                   "arms, phase 4's seeds): for a cluster launcher, where each is a job array")
    p.add_argument("--in-process", action="store_true", help="run the Hydra commands inside this process, one "
                   "after the other (one interpreter and Lightning import instead of one per command; mini.sh "
                   "and the tests); --concurrent is then ignored")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, see below")
    return p


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build(argv: list[str]) -> tuple[Pipeline, list[str]]:
    args = parser().parse_intermixed_args(argv)
    arms = [a for a in _list(args.arms) if a != BASELINE]
    try:
        seeds = [int(s) for s in _list(args.seeds)]
    except ValueError:
        raise PipelineError(f"--seeds={args.seeds!r}: pass comma-separated whole numbers, e.g. --seeds 0,1,2") from None
    datasets = _list(args.datasets)
    phases = _list(args.phases)
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not datasets or not seeds:
        raise PipelineError(f"--phases takes {','.join(PHASES)}" if unknown else "--datasets and --seeds need a value")
    if len(datasets) < 2 and {"tr_rf", "lm"} & set(arms):
        raise PipelineError("tr_rf and lm learn from the other datasets: pass at least two --datasets")
    common, scoped = split_overrides(args.overrides, arms)
    sweep = Sweep(args.sweep, datasets, seeds, arms, common, scoped)
    pipeline = Pipeline(sweep, in_process=args.in_process, concurrent=args.concurrent, dry_run=args.dry_run)
    loads_models = bool({"2", "3"} & set(phases))  # phase 1 alone never reads a language model
    for arm in list(arms):
        model = sweep.model_name(arm)
        message = None if model is None else language_model_missing(arm, model, check_source=loads_models)
        if message is None:
            continue
        if args.if_lm_missing == "error":
            raise PipelineError(message)
        sweep.arms.remove(arm)
        say(f"{message}; going on without it (arms: {', '.join([BASELINE, *sweep.arms])})")
    return pipeline, phases


def main(argv: list[str] | None = None) -> int:
    try:
        pipeline, phases = build(sys.argv[1:] if argv is None else argv)
        sweep = pipeline.sweep
        say(f"sweep {sweep.name} in {sweep.sweep_dir}: {len(sweep.datasets)} dataset(s) x {len(sweep.seeds)} "
            f"seed(s) x arms {', '.join([BASELINE, *sweep.arms])}; phases {','.join(phases)}")
        pipeline.run(phases)
    except PipelineError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume (finished pieces are kept)",
              file=sys.stderr, flush=True)
        return 130
    say("done" + ("" if pipeline.report_dir is None else f": {pipeline.report_dir / 'report.md'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
