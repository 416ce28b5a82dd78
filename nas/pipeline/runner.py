"""The phases of the paper's experiment, each a few Hydra commands for what is still missing.

Every phase asks ``nas.pipeline.plan`` which of its pieces are done, launches Hydra multiruns for
the rest only, then checks again: a phase that is still incomplete afterwards (a job failed) stops
the pipeline with one line naming what is missing, and rerunning the same command resumes it (the
searches resume from their checkpoints, finished pieces are skipped without starting a process).

1. **baseline**: ``search.py -m strategy=surrogate_evolution surrogate=random`` on every dataset and
   seed (the paper's RE).
2. **transfer inputs**: ``evaluate.py -m task=features`` exports each baseline run's feature and
   string tables to ``<sweep>/transfer/``; for a language-model arm (``lm``), ``train.py -m
   task=surrogate target=<each dataset> data=<sweep>/transfer`` fine-tunes one model per target on
   the other datasets into ``<sweep>/finetuned/lm/<target>/`` (``checkpoint_dir``).
3. **surrogate arms**: one ``search.py -m`` per arm, each run sharing its dataset's and seed's first
   generation with the baseline (``search.first_generation=auto``): ``rf``; ``tr_rf`` with
   ``surrogate.transfer_dir=<sweep>/transfer`` and ``surrogate.source_datasets=<the sweep's datasets>``
   (the target is always left out, and a source without a file is an error naming it); ``lm`` with
   ``surrogate.checkpoint=<sweep>/finetuned/lm/${dataset.name}``. Phase 3 refuses to start before
   phase 2's outputs exist.
4. **final test**: ``train.py -m trainer=final run=<runs> seed=<s>`` retrains each run's best
   architecture with the run's seed (the paper's test.py sets the search's seed), its Hydra job dir
   set to ``<run>/final`` (``hydra.sweep.subdir=${run}/final``), so ``<run>/final/result.json``
   holds ``test_acc``; the runner then adds it to each run's summary (``summary.json`` and the
   run's W&B run: ``nas.search.reporting.record_test_accuracy``). A ``final/`` without a result (a
   killed job), or with the result of an architecture that is no longer the run's best, is moved
   aside to ``final.incomplete-<time>`` / ``final.outdated-<time>`` first (nothing is deleted).
5. **report**: ``evaluate.py task=report sweep_dir=<sweep>`` into ``<sweep>/report/<time>/``.

Commands are grouped into few multiruns: jobs that miss the same seeds share one
(``plan.product_groups``). Each multirun goes through the launcher the overrides choose
(``hydra/launcher=joblib``, ``submitit_slurm``, ...); phase 3's arms and phase 4's seeds are
separate multiruns, run one after the other, or at the same time with ``concurrent=True`` (for a
cluster, where each multirun is a job array). With ``in_process=True`` the commands run inside
this process, one after the other (``runpy``, as ``python <script> ...`` would): the same Hydra
commands without a new interpreter and Lightning import per command (about 10 s each on a busy
2-core machine), which mini.sh and the tests use. A command stopped by Ctrl-C stops the runner.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nas.pipeline.plan import BASELINE, REPO, PipelineError, Sweep, product_groups, read_json

PHASES = ("1", "2", "3", "4", "report")
INTERRUPTED = 130  # exit status of a command stopped by Ctrl-C (nas.hydra_utils)


def say(line: str) -> None:
    print(f"[pipeline {datetime.now():%H:%M:%S}] {line}", flush=True)


_HYDRA_PLAIN = re.compile(r"^[A-Za-z0-9_/.+:~@%${}-]+$")
_SHELL_PLAIN = re.compile(r"^[A-Za-z0-9_/.+:=,@%-]+$")


def hydra_quote(value: str | Path) -> str:
    """A value for a Hydra override: as it is when Hydra reads it so, else quoted (run dirs hold
    '=', as in seed=0). Interpolations (``${dataset.name}``) are resolved in both forms."""
    value = str(value)
    if _HYDRA_PLAIN.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def shell_quote(arg: str) -> str:
    """``arg`` for a shell, readably: bare, in double quotes when that keeps it literal, else single."""
    if _SHELL_PLAIN.match(arg):
        return arg
    if not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    return shlex.quote(arg)


def hydra_list(values) -> str:
    return ",".join(hydra_quote(v) for v in values)


@dataclass
class Command:
    """One Hydra command: ``python <script> <args>``, and what it does."""

    script: str
    args: list[str]
    what: str

    def shell(self) -> str:
        return "python " + " ".join(shell_quote(a) for a in [self.script, *self.args])


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def run_in_process(command: Command) -> int:
    """``python <script> <args>`` inside this process: the script runs as ``__main__``."""
    import runpy

    argv = sys.argv
    sys.argv = [str(REPO / command.script), *command.args]
    try:
        runpy.run_path(str(REPO / command.script), run_name="__main__")
        return 0
    except SystemExit as exc:
        return _exit_code(exc)
    finally:
        sys.argv = argv


def execute(commands: list[Command], in_process: bool = False, concurrent: bool = False) -> list[int]:
    """Run the commands (in order, or all at once), their output going to ours; the exit codes."""
    def start(command: Command):
        say(f"{command.what}:\n+ {command.shell()}")
        if in_process:
            return run_in_process(command)
        argv = [sys.executable, str(REPO / command.script), *command.args]
        return subprocess.Popen(argv) if concurrent else subprocess.run(argv).returncode

    started = [start(c) for c in commands]
    codes = [p.wait() if isinstance(p, subprocess.Popen) else p for p in started]
    if any(code in (INTERRUPTED, -signal.SIGINT) for code in codes):  # Ctrl-C in a command: stop here
        raise KeyboardInterrupt
    return codes


class Pipeline:
    """Runs the phases of one sweep (``run(phases)``); see the module doc."""

    def __init__(self, sweep: Sweep, in_process: bool = False, concurrent: bool = False, dry_run: bool = False):
        self.sweep = sweep
        self.in_process, self.concurrent, self.dry_run = in_process, concurrent, dry_run
        self.stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        self.report_dir: Path | None = None

    # ------------------------------------------------------------------ driving
    def run(self, phases: list[str]) -> None:
        steps = {"1": self.baseline, "2": self.transfer_inputs, "3": self.arms, "4": self.final, "report": self.report}
        for phase in PHASES:
            if phase in phases:
                steps[phase]()

    def _launch(self, title: str, commands: list[Command], missing) -> None:
        """Run ``commands``, then fail with one line if ``missing()`` still names pieces."""
        if not commands:
            return
        if self.dry_run:
            for command in commands:
                say(f"{command.what} (dry run):\n+ {command.shell()}")
            return
        codes = execute(commands, self.in_process, self.concurrent)
        left = missing()
        if left:
            failed = sum(code != 0 for code in codes)
            raise PipelineError(
                f"{title}: {len(left)} not done ({', '.join(left[:4])}{', ...' if len(left) > 4 else ''}; "
                f"{failed} of {len(codes)} command(s) failed, see above); fix the cause and rerun the same "
                f"command: finished pieces are kept, the rest resumes")

    def _require(self, what: str, left: list[str], how: str) -> None:
        if left and not self.dry_run:
            raise PipelineError(f"{what} first: {len(left)} missing ({', '.join(left[:4])}"
                                f"{', ...' if len(left) > 4 else ''}); {how}")

    def _dir(self, step: str) -> Path:
        """Where a non-search multirun keeps Hydra's records (multirun.yaml, job logs)."""
        return (self.sweep.sweep_dir / "pipeline" / step / self.stamp).absolute()

    # ------------------------------------------------------------------ searches (phases 1 and 3)
    def _pending(self, arm: str) -> list[tuple[str, int]]:
        s = self.sweep
        return [(d, seed) for d in s.datasets for seed in s.seeds if not s.search_finished(arm, d, seed)]

    def _unfinished(self, arms: list[str]) -> list[str]:
        return [f"{arm} {d} seed={seed}" for arm in arms for d, seed in self._pending(arm)]

    def arm_overrides(self, arm: str) -> list[str]:
        """What an arm needs from the earlier phases."""
        s = self.sweep
        if arm == "tr_rf":
            names = ",".join(s.dataset_name(d) for d in s.datasets)
            return [f"surrogate.transfer_dir={hydra_quote(s.transfer_dir)}", f"surrogate.source_datasets=[{names}]"]
        if self.is_language_model(arm):
            return [f"surrogate.checkpoint={hydra_quote(s.checkpoint_dir(arm, '${dataset.name}'))}"]
        return []

    def _search_commands(self, arm: str, what: str) -> list[Command]:
        s = self.sweep
        return [Command("search.py", ["-m", f"sweep_name={s.name}", f"dataset={','.join(datasets)}",
                                      f"seed={','.join(map(str, seeds))}", "strategy=surrogate_evolution",
                                      f"surrogate={arm}", *self.arm_overrides(arm), *s.search_overrides(arm)],
                        f"{what}: {arm} on {len(datasets) * len(seeds)} run(s)")
                for datasets, seeds in product_groups(self._pending(arm))]

    def baseline(self) -> None:
        n = len(self.sweep.datasets) * len(self.sweep.seeds)
        commands = self._search_commands(BASELINE, "phase 1 (RE baseline)")
        say(f"phase 1 (RE baseline): {n - len(self._pending(BASELINE))} of {n} runs finished")
        self._launch("phase 1 (RE baseline)", commands, lambda: self._unfinished([BASELINE]))

    def arms(self) -> None:
        s = self.sweep
        self._require("phase 3 needs phase 1", self._unfinished([BASELINE]),
                      "rerun without --phases (or with --phases 1,2,3)")
        if "tr_rf" in s.arms:
            self._require("phase 3 (tr_rf) needs phase 2's feature exports", self._missing_exports(),
                          "rerun without --phases (or with --phases 2,3)")
        for arm in s.arms:
            if self.is_language_model(arm):
                self._require(f"phase 3 ({arm}) needs phase 2's fine-tuned models", self._missing_models(arm),
                              "rerun without --phases (or with --phases 2,3)")
        n = len(s.datasets) * len(s.seeds)
        commands = []
        for arm in s.arms:
            say(f"phase 3 ({arm}): {n - len(self._pending(arm))} of {n} runs finished")
            commands += self._search_commands(arm, "phase 3 (surrogate arm)")
        self._launch("phase 3 (surrogate arms)", commands, lambda: self._unfinished(s.arms))

    # ------------------------------------------------------------------ phase 2
    def is_language_model(self, arm: str) -> bool:
        return self.sweep.model_name(arm) is not None

    def _missing_exports(self) -> list[str]:
        s = self.sweep
        return [f"{s.export_file(d, seed).name}" for d in s.datasets for seed in s.seeds if not s.export_done(d, seed)]

    def _missing_models(self, arm: str) -> list[str]:
        s = self.sweep
        return [str(s.checkpoint_dir(arm, s.dataset_name(d))) for d in s.datasets if not s.checkpoint_done(arm, d)]

    def transfer_inputs(self) -> None:
        s = self.sweep
        self._require("phase 2 needs phase 1", self._unfinished([BASELINE]),
                      "rerun without --phases (or with --phases 1,2)")
        pending = [(d, seed) for d in s.datasets for seed in s.seeds if not s.export_done(d, seed)]
        say(f"phase 2 (feature export): {len(s.datasets) * len(s.seeds) - len(pending)} of "
            f"{len(s.datasets) * len(s.seeds)} baseline runs exported to {s.transfer_dir}")
        commands = []
        if pending:
            runs = [s.run_dir(BASELINE, d, seed) for d, seed in pending]
            commands.append(Command("evaluate.py", [
                "-m", "task=features", f"run={hydra_list(runs)}", f"export_dir={hydra_quote(s.transfer_dir)}",
                f"hydra.sweep.dir={hydra_quote(self._dir('features'))}", *s.overrides("features")],
                f"phase 2 (feature export): {len(runs)} baseline run(s)"))
        self._launch("phase 2 (feature export)", commands, self._missing_exports)
        for arm in s.arms:
            if not self.is_language_model(arm):
                continue
            targets = [s.dataset_name(d) for d in s.datasets if not s.checkpoint_done(arm, d)]
            say(f"phase 2 (fine-tuning {arm}): {len(s.datasets) - len(targets)} of {len(s.datasets)} "
                f"leave-one-dataset-out models done in {s.checkpoint_dir(arm)}")
            commands = [Command("train.py", [
                "-m", "task=surrogate", f"surrogate={arm}", f"data={hydra_quote(s.transfer_dir)}",
                f"target={','.join(targets)}",
                f"checkpoint_dir={hydra_quote(s.checkpoint_dir(arm, '${target}'))}",
                f"hydra.sweep.dir={hydra_quote(self._dir('finetune'))}", *s.overrides("finetune")],
                f"phase 2 (fine-tuning {arm}): leave out {', '.join(targets)}")] if targets else []
            self._launch(f"phase 2 (fine-tuning {arm})", commands, lambda arm=arm: self._missing_models(arm))

    # ------------------------------------------------------------------ phase 4
    def final(self) -> None:
        s = self.sweep
        arms = [BASELINE, *s.arms]
        self._require("phase 4 needs every search finished", self._unfinished(arms),
                      "rerun without --phases (or with --phases 1,2,3,4)")
        runs = s.runs(arms)
        pending = [(seed, run) for _arm, _d, seed, run in runs if not s.final_done(run)]
        say(f"phase 4 (final test): {len(runs) - len(pending)} of {len(runs)} runs retrained and tested")
        if not self.dry_run:
            for _seed, run in pending:
                self._set_aside(s.final_dir(run))
        by_seed: dict[int, list[Path]] = {}  # one multirun per seed: each run is retrained with its own seed
        for seed, run in pending:
            by_seed.setdefault(seed, []).append(run)
        commands = [Command("train.py", [
            "-m", "trainer=final", f"seed={seed}", f"run={hydra_list(r.absolute() for r in group)}",
            f"hydra.sweep.dir={hydra_quote(self._dir('final'))}", "hydra.sweep.subdir=${run}/final",
            *s.overrides("final")], f"phase 4 (final test): {len(group)} run(s) of seed {seed}")
            for seed, group in by_seed.items()]
        self._launch("phase 4 (final test)", commands,
                     lambda: [str(run) for _a, _d, _s, run in runs if not s.final_done(run)])
        if not self.dry_run:
            self._record_tests([run for _a, _d, _s, run in runs])

    def _record_tests(self, runs: list[Path]) -> None:
        """Each run's summary (``summary.json`` and its W&B run) gets its ``test_acc``, once."""
        def test_acc(run: Path) -> float | None:  # as nas.search.reporting.final_test_accuracy reads it
            final = read_json(self.sweep.final_dir(run) / "result.json") or {}
            value = final.get("test_acc") if final.get("status", "ok") == "ok" else None
            return value if isinstance(value, int | float) and value == value else None

        todo = [run for run in runs if (run / "summary.json").is_file()  # logger=none keeps no summary
                and (read_json(run / "summary.json") or {}).get("test_acc") != test_acc(run)]
        if not todo:
            return
        # Imported only now: it brings pandas and the encoders (seconds).
        from nas.search.reporting import record_test_accuracy

        say(f"phase 4 (final test): test_acc into the summary of {len(todo)} run(s)")
        for run in todo:
            record_test_accuracy(run)

    def _set_aside(self, final: Path) -> None:
        """An earlier ``final/`` that is not this run's finished test moves aside, never deleted."""
        if not final.exists():
            return
        if (final / "result.json").exists():
            kind, why = "outdated", "the test of an architecture that is no longer the run's best"
        else:
            kind, why = "incomplete", "no result.json: an interrupted retraining"
        target = final.with_name(f"{final.name}.{kind}-{self.stamp}")
        say(f"moving {final} aside to {target.name} ({why})")
        shutil.move(str(final), str(target))

    # ------------------------------------------------------------------ report
    def report(self) -> None:
        s = self.sweep
        out = s.sweep_dir / "report" / self.stamp
        command = Command("evaluate.py", ["task=report", f"sweep_dir={hydra_quote(s.sweep_dir)}",
                                          f"hydra.run.dir={hydra_quote(out)}", *s.overrides("report")], "report")
        if self.dry_run:
            say(f"report (dry run):\n+ {command.shell()}")
            return
        if execute([command], self.in_process)[0] != 0:
            raise PipelineError(f"the report failed (see above); rerun it with: {command.shell()}")
        self.report_dir = out



def language_model_missing(arm: str, model_name: str, check_source: bool = True) -> str | None:
    """Why a language-model arm cannot run here, as the message to print, or None. Checked before
    phase 1: the optional ``.[lm]`` extra and, with ``check_source`` (the phases to run read the
    model), a directory that does not exist or a hub name (``bert``'s ModernBERT-large) that is
    neither cached nor reachable, so a sweep does not fail at phase 2 after its baseline ran."""
    extra = "pip install -e '.[lm]'"
    if importlib.util.find_spec("transformers") is None:
        return f"the {arm} arm needs the optional language-model extra (transformers is not installed): {extra}"
    if model_name.startswith("pkg:"):
        if importlib.util.find_spec(model_name[4:]) is None:
            return (f"the {arm} arm needs the optional language-model extra (the model package {model_name[4:]} "
                    f"is not installed): {extra}")
        return None
    if not check_source:
        return None
    from surrogates.predictors.language_model_sources import (
        LanguageModelUnavailable,
        resolve_model_source,
    )

    try:
        resolve_model_source(model_name)
    except LanguageModelUnavailable as err:
        return f"the {arm} arm cannot load its model: {err}"
    return None
