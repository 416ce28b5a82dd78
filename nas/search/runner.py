"""The search loop: ask, evaluate, archive, tell, checkpoint, log, plot. Resumable at any moment.

Determinism: the strategy draws from one ``random.Random`` whose state is checkpointed after
every evaluated candidate, and candidate ``i`` of the archive is trained with a seed derived
from (run seed, i). A run killed at any moment and restarted therefore redoes the interrupted
candidate identically and ends with the same archive as an uninterrupted run (on CPU).

Nothing a run wrote is lost or rewritten behind the user's back:

* ``archive.jsonl`` without ``checkpoint.json`` (killed before its first checkpoint, or a damaged
  checkpoint moved away): the state is rebuilt by replaying the archive through a fresh strategy
  (``nas.search.replay``, which says why replay and not reconstruction); records that do not
  replay are moved to ``archive.redone.jsonl`` with a warning, and an archive of which not even
  the first record replays is refused with a one-line error that touches no file.
* ``search.restart=true`` moves everything in the run dir into ``restarted-<time>/`` except the
  three files Hydra just wrote for this command (``.hydra/config.yaml``, ``hydra.yaml``,
  ``overrides.yaml``), earlier ``restarted-*`` folders and the log files this process writes
  (Hydra's ``search.log``: its earlier lines are copied aside and the file is emptied).
* A command that is refused (changed experiment, damaged checkpoint, ...) leaves ``.hydra/``
  describing the run in the directory (``nas.search.hydra_record``) and writes nothing else.
* Rerunning a finished search (``result.json`` written for this checkpoint, with a budget at
  least the one asked for) returns the saved result and writes nothing: no result, features,
  figures, logger run or metrics. A larger ``search.budget`` is not a different experiment
  (``nas.search.identity``): it continues the search, and the final files are rewritten then.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nas.logging import atomic_write_text, create_logger, to_jsonable
from nas.search.archive import Archive
from nas.search.checkpoint import (
    global_rng_states,
    load_checkpoint,
    python_rng_state,
    save_checkpoint,
    set_global_rng_states,
    set_python_rng_state,
)
from nas.search.features import (
    TRAINED_STATUSES,
    feature_table,
    search_settings,
    write_feature_table,
)
from nas.search.first_generation import (
    FirstGenerationLock,
    FirstGenerationTimeout,
    first_generation_path,
    publish,
    wait_for,
)
from nas.search.hydra_record import FILES as HYDRA_FILES
from nas.search.hydra_record import HydraRecord, unique_dir
from nas.search.identity import (
    config_digest,
    derive_seed,
    diff_configs,
    experiment_config,
    first_generation_key,
    with_legacy_values,
)
from nas.search.progress import SearchProgress
from nas.search.replay import replay
from nas.search.strategies import STRATEGIES
from nas.search.strategies.base import Proposal
from nas.search.surrogate import SURROGATES, FeatureSurrogate, list_surrogates
from surrogates.encodings import create_encoder
from surrogates.metrics import rank_metrics

log = logging.getLogger(__name__)

CHECKPOINT, ARCHIVE, EXPERIMENT, RESULT = "checkpoint.json", "archive.jsonl", "experiment.json", "result.json"


class SearchError(RuntimeError):
    """A search that cannot go on; the message says why and what to do."""


class SearchRunner:
    def __init__(self, cfg: DictConfig, run_dir: str | Path):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.settings = cfg.search
        self.seed = int(cfg.seed)
        self.budget = int(self.settings.budget)

    # ----------------------------------------------------------------------------- set-up
    def _check_names(self) -> None:
        for group, known in (("strategy", STRATEGIES), ("surrogate", list_surrogates())):
            name = self.cfg[group].get("name")
            if name not in known:
                raise SearchError(f"unknown {group} {name!r}; available: {', '.join(sorted(known))}")

    def _build(self) -> None:
        cfg = self.cfg
        self.space = instantiate(cfg.space)
        self.datamodule = instantiate(cfg.dataset)
        self.datamodule.setup()
        self.trainer_cfg = instantiate(cfg.trainer)
        self.surrogate = self._build_surrogate()
        self.rng = random.Random(derive_seed(self.seed, "strategy"))
        try:
            self.strategy = instantiate(_without_name(cfg.strategy))(
                space=self.space, rng=self.rng, surrogate=self.surrogate, budget=self.budget)
        except ValueError as err:
            raise SearchError(str(err)) from None
        if self.strategy.uses_surrogate:
            self.strategy.precheck = self._precheck  # bred children pass the limits before scoring
        self.archive = Archive(self.run_dir / ARCHIVE)

    def _build_surrogate(self):
        cfg, seed = self.cfg, derive_seed(self.seed, "surrogate")
        name = cfg.surrogate.name
        factory = instantiate(_without_name(cfg.surrogate))
        if name in SURROGATES:
            return factory(seed=seed)
        encoding = cfg.encoding.name
        if encoding in ("none", "string"):
            raise SearchError(f"surrogate={name} needs a numeric encoding: add encoding=graf_zcp (the paper's), "
                              "encoding=graf or encoding=zcp")
        params = OmegaConf.to_container(cfg.encoding, resolve=True)
        params.pop("name")
        batch_size = int(params.pop("batch_size", 256))  # the proxies' batch (256 in the paper)
        context = {"space": self.space, "batch": self.datamodule.example_batch(batch_size),
                   "num_classes": self.datamodule.num_classes, "seed": seed}
        encoder = create_encoder(encoding, context=context, **params)
        try:
            predictor = factory(seed=seed)
        except (ValueError, FileNotFoundError) as err:
            raise SearchError(f"surrogate={name}: {err}") from None
        return FeatureSurrogate(encoder, predictor, name, seed)

    def _precheck(self, arch) -> tuple[str, str] | None:
        """The training pre-checks (memory estimate, forward time) without training; the global
        RNG states are left as they were, so pre-checking changes nothing else in the run."""
        from nas.training import precheck_candidate  # heavy import, only when needed

        failure = precheck_candidate(arch, self.datamodule, self.trainer_cfg, space=self.space,
                                     seed=derive_seed(self.seed, "precheck"))
        return None if failure is None else (failure.status, failure.reason)

    def _check_identity(self) -> None:
        """Refuse to resume a run dir that holds a different experiment (``search.restart=true``
        first moves the earlier run aside)."""
        path = self.run_dir / EXPERIMENT
        if self.settings.restart and self.run_dir.exists():
            self._set_aside_previous_run()
        if not path.exists():
            return
        saved = with_legacy_values(json.loads(path.read_text()))
        differences = diff_configs(saved, to_jsonable(experiment_config(self.cfg)))
        if differences:
            raise SearchError(
                f"{self.run_dir} holds a search with a different experiment config:\n  "
                + "\n  ".join(differences)
                + "\nUse the same settings to resume it, another run directory (hydra.run.dir=...), "
                  "or search.restart=true to start this one over (the old files are kept aside).")

    def _set_aside_previous_run(self) -> None:
        """``search.restart=true``: move everything the earlier run wrote into ``restarted-<time>/``.

        The rule: every entry of the run dir moves, except the files Hydra wrote for this command
        (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``; the rest of ``.hydra/``, the
        earlier run's accepted config and refused commands, moves to ``restarted-<time>/.hydra/``),
        earlier ``restarted-*`` folders, and the log files this process has open in the run dir
        (Hydra's ``search.log``): their earlier lines are copied aside and the file is emptied."""
        open_logs = _open_log_files(self.run_dir)
        hydra_dir = HydraRecord.of_current_job(self.run_dir).dir or self.run_dir / ".hydra"
        moves: list[tuple[Path, Path]] = []
        for entry in sorted(self.run_dir.iterdir()):
            if entry.name.startswith("restarted-") and entry.is_dir():
                continue
            if entry == hydra_dir and entry.is_dir():
                moves += [(sub, Path(hydra_dir.name) / sub.name) for sub in sorted(entry.iterdir())
                          if sub.name not in HYDRA_FILES]
                continue
            if entry.resolve() in open_logs:
                if entry.stat().st_size:
                    moves.append((entry, Path(entry.name)))  # copied, then emptied
                continue
            moves.append((entry, Path(entry.name)))
        if all(source.resolve() in open_logs for source, _ in moves):
            return  # nothing but this job's own log: no run to set aside
        aside = unique_dir(self.run_dir / f"restarted-{time.strftime('%Y%m%d-%H%M%S')}")
        for source, name in moves:
            target = aside / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.resolve() in open_logs:
                shutil.copyfile(source, target)
                with open(source, "r+b") as fh:  # the handler appends (O_APPEND): it writes at the new end
                    fh.truncate(0)
            else:
                shutil.move(str(source), str(target))
        log.warning("search.restart=true: the previous run's files (%d entries) moved to %s", len(moves), aside)

    # ----------------------------------------------------------------------------- resume
    def _restore_state(self) -> dict[str, Any] | None:
        """Load the state to continue from: the checkpoint, or a replay of an archive found
        without one. Writes nothing to the archive unless the state is resumable. Returns the
        saved result when the search has already finished (nothing is to be done)."""
        self.failures: Counter = Counter()
        self.consecutive_failures = 0
        self.elapsed_before = 0.0
        self.last_refit_index = 0
        self.resumed = False
        self.pending = None  # a proposal the strategy made during a replay, evaluated first
        state = load_checkpoint(self.run_dir / CHECKPOINT)  # CheckpointError on damage
        if state is not None:
            saved = self._saved_result(state["iteration"], state["archive_len"])
            if saved is not None:
                return saved
            self.archive.load(keep=state["archive_len"])
            self._load_state(state)
            self.resumed = True
            log.info("resuming %s at iteration %d (%d candidates)", self.run_dir, self.strategy.iteration,
                     len(self.archive))
            return None
        records = self.archive.load(cut=False)  # the file is cut once the replay has said where
        if not records:
            self.archive.load()  # a line a kill left half written is set aside
            return None
        self._rebuild_from_archive(list(records))
        self.resumed = True
        if self.pending is not None:
            return None  # checkpointed once the pending proposal is evaluated; a kill before replays again
        saved = self._saved_result(self.strategy.iteration, len(self.archive))
        self._checkpoint()  # the rebuilt state: a kill from now on resumes from it
        return saved

    def _rebuild_from_archive(self, records: list[dict[str, Any]]) -> None:
        """Replay ``records`` through the freshly built strategy (``nas.search.replay``)."""
        done = replay(self.strategy, records)
        if done.matched == 0:
            raise SearchError(
                f"{self.run_dir} holds {ARCHIVE} ({len(records)} candidates) but no {CHECKPOINT}, and the "
                f"archive cannot be replayed to rebuild the search state ({done.why}). Restore {CHECKPOINT}, "
                "or rerun with search.restart=true to start over (the old files are kept aside in "
                "restarted-<time>/).")
        self.archive.load(keep=done.matched, warn=done.matched == len(records))  # the rest: archive.redone.jsonl
        if done.matched < len(records):
            log.warning("%s had no %s: rebuilt the search state from the first %d of its %d candidates; the "
                        "other %d do not replay (%s) and are redone, the lines kept in %s", self.run_dir,
                        CHECKPOINT, done.matched, len(records), len(records) - done.matched, done.why,
                        self.archive.aside_path)
        else:
            log.warning("%s had no %s: rebuilt the search state by replaying its %d archived candidates "
                        "(nothing retrained)", self.run_dir, CHECKPOINT, len(records))
        self.failures = done.failures
        self.pending = done.pending
        self.consecutive_failures = done.consecutive_failures
        self.last_refit_index = done.last_refit_index
        self.elapsed_before = sum(sum((r.get("seconds") or {}).values()) for r in self.archive.records)

    def _saved_result(self, iteration: int, archive_len: int) -> dict[str, Any] | None:
        """``result.json`` if it was written for this state with a budget at least this one."""
        try:
            saved = json.loads((self.run_dir / RESULT).read_text(encoding="utf-8"))
            finished = (saved["iterations"] == iteration and saved["candidates"]["evaluated"] == archive_len
                        and int(saved["budget"]) >= self.budget)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return saved if finished else None

    def _load_state(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state["strategy"], self.archive.records)
        set_python_rng_state(self.rng, state["rng"])
        set_global_rng_states(state["global_rng"])
        self.failures = Counter(state["failures"])
        self.consecutive_failures = state["consecutive_failures"]
        self.elapsed_before = state["elapsed"]
        self.last_refit_index = state["last_refit_index"]
        self.strategy.timings = Counter(state.get("timings", {}))  # not in older checkpoints

    def _state(self) -> dict[str, Any]:
        return {"archive_len": len(self.archive), "strategy": self.strategy.state_dict(),
                "rng": python_rng_state(self.rng), "global_rng": global_rng_states(),
                "failures": dict(self.failures), "consecutive_failures": self.consecutive_failures,
                "elapsed": self._elapsed(), "last_refit_index": self.last_refit_index,
                "iteration": self.strategy.iteration, "timings": dict(self.strategy.timings)}

    def _accept(self, hydra: HydraRecord) -> None:
        """This command runs in the run dir: record its experiment and its Hydra config."""
        path = self.run_dir / EXPERIMENT
        if not path.exists():
            atomic_write_text(path, json.dumps(to_jsonable(experiment_config(self.cfg)), indent=2))
        hydra.accept()

    # ------------------------------------------------------------------ first generation
    def _first_generation_path(self) -> Path | None:
        """Shared initial population of runs that differ only in strategy details or surrogate:
        ``<paths.output_dir>/first_generation/<dataset>/...`` (see ``nas.search.first_generation``)."""
        setting = self.settings.get("first_generation", "auto")
        if not setting or not hasattr(self.strategy, "population_size"):
            return None
        if setting != "auto":
            return Path(str(setting))
        key = first_generation_key(self.cfg)
        return first_generation_path(self.cfg.paths.output_dir, self.cfg.dataset.name, self.seed,
                                     key["population_size"], config_digest(to_jsonable(key)))

    def _join_first_generation(self) -> None:
        """A fresh run loads the shared first generation or trains it (waiting while another job
        trains it); a resumed run still in its initial population loads the rest of it when its
        archive is the start of it (a kill while it was being copied), else trains its own."""
        first_gen = self._first_generation_path()
        self.first_gen_lock = None if first_gen is None else FirstGenerationLock(
            first_gen, float(self.settings.get("first_generation_stale_s", 7200)))
        if first_gen is None:
            return
        if self.resumed:
            if not self.strategy.initialising:
                return
            if first_gen.exists():
                data = json.loads(first_gen.read_text())
                if data["records"][: len(self.archive)] == self.archive.records:
                    self._load_first_generation(first_gen, data)
            else:
                self.first_gen_lock.try_acquire()  # this run trains it; others wait for it
            return
        try:
            ready = wait_for(first_gen, self.first_gen_lock, float(self.settings.get("first_generation_wait_s", 172800)),
                             on_wait=lambda owner: log.warning(
                                 "waiting for the first generation that another job (host %s, pid %s) is "
                                 "training: %s", owner.get("host", "?"), owner.get("pid", "?"), first_gen))
        except FirstGenerationTimeout as err:
            raise SearchError(str(err)) from None
        if ready:
            self._load_first_generation(first_gen)

    def _load_first_generation(self, path: Path, data: dict[str, Any] | None = None) -> None:
        """Append the shared first generation's records (those the archive does not hold yet)
        and take its state."""
        data = json.loads(path.read_text()) if data is None else data
        if data["key"] != to_jsonable(first_generation_key(self.cfg)):
            differences = diff_configs(data["key"], to_jsonable(first_generation_key(self.cfg)))
            raise SearchError(f"first generation {path} was made for another setting:\n  " + "\n  ".join(differences))
        for record in data["records"][len(self.archive):]:
            self.archive.append(record)
        self.pending = None  # the first generation's state replaces a replayed one
        self._load_state({**data["state"], "strategy": {**self.strategy.state_dict(), **data["state"]["strategy"]}})
        events = self.strategy.after_first_generation() if hasattr(self.strategy, "after_first_generation") else {}
        self._log_events(events)
        log.info("loaded the first generation (%d candidates) from %s", len(self.archive), path)
        self._checkpoint()

    def _save_first_generation(self) -> None:
        path = self._first_generation_path()
        if path is None or path.exists():
            self._release_first_generation_lock()
            return
        state = self._state()
        state["strategy"] = {k: state["strategy"][k] for k in
                             ("iteration", "population", "failed_tries", "trained_seeds", "failed_seeds")}
        data = {"key": to_jsonable(first_generation_key(self.cfg)), "records": self.archive.records, "state": state}
        if publish(path, data):
            log.info("saved the first generation to %s", path)
        self._release_first_generation_lock()

    def _release_first_generation_lock(self) -> None:
        if getattr(self, "first_gen_lock", None) is not None:
            self.first_gen_lock.release()

    # --------------------------------------------------------------------------- the loop
    def run(self) -> dict[str, Any]:
        hydra = HydraRecord.of_current_job(self.run_dir)
        self.first_gen_lock = None
        # An earlier run of this directory that this command would resume: if the command is
        # refused, the directory (its .hydra/ included) describes that run again.
        resuming = not self.settings.restart and (self.run_dir / EXPERIMENT).exists()
        try:
            self._check_names()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._build()
            self._started = self._last_figures = time.perf_counter()
            self._check_identity()
            _remove_stale_temporary_files(self.run_dir)
            saved = self._restore_state()
        except KeyboardInterrupt:
            if resuming:  # nothing was done: .hydra/ describes the run in the directory again
                hydra.restore()
            raise
        except BaseException:
            if resuming:  # the run in the directory stays as it was, .hydra/ included
                hydra.refuse()
            raise
        if saved is not None:
            hydra.restore()
            log.info("%s: the search has finished (%d iterations, budget %s); nothing to do, nothing "
                     "rewritten (raise search.budget to continue it)", self.run_dir, saved["iterations"],
                     saved["budget"])
            return saved
        self._accept(hydra)
        # The logger exists before the first generation is joined: loading a shared first
        # generation fits the surrogate, and that refit is logged.
        self.logger = create_logger(self.cfg.get("logger"), run_dir=str(self.run_dir), job_type="search",
                                    name=self.run_name(), group=self.cfg.get("sweep_name"),
                                    config=OmegaConf.to_container(self.cfg, resolve=True))
        progress = None
        try:
            self.logger.define_metric("search/*", step_metric="search/iteration")
            self.logger.define_metric("surrogate/*", step_metric="search/iteration")
            self._join_first_generation()
            progress = SearchProgress(self.budget, self.strategy.iteration, bool(self.settings.progress),
                                      self.run_name())
            while self.strategy.iteration < self.budget:
                proposal, self.pending = self.pending or self.strategy.ask(), None
                if proposal is None:
                    break
                self._step(proposal)
                progress.update(self.strategy.iteration, self.best_accuracy(), sum(self.failures.values()))
            result = self._finish()
        finally:
            self._release_first_generation_lock()
            if progress is not None:
                progress.close()
            self.logger.finish()
        return result

    def _step(self, proposal: Proposal) -> None:
        index = len(self.archive)
        record = self._evaluate(proposal, index)
        accuracy = record["val_acc"] if record["status"] == "ok" else None
        iteration = self.strategy.iteration if accuracy is not None else None
        record["iteration"] = iteration
        self.archive.append(record)
        if self.first_gen_lock is not None:
            self.first_gen_lock.heartbeat()
        events = self.strategy.tell(proposal, index, accuracy)
        if accuracy is None:
            self.failures[record["status"]] += 1
            self.consecutive_failures += 1
            if proposal.origin == "seed":
                log.warning("seed architecture %r failed (%s: %s); its places in the initial population "
                            "are filled with random samples (listed in result.json under 'seeds')",
                            proposal.seed_name, record["status"], record["reason"])
        else:
            self.consecutive_failures = 0
            self._log_iteration(record)
        self._log_events(events)
        if hasattr(self.strategy, "population_size") and accuracy is not None \
                and self.strategy.iteration == self.strategy.population_size:
            self._save_first_generation()
        self._checkpoint()
        if accuracy is not None and self.strategy.iteration % int(self.settings.figures_every) == 0 \
                and time.perf_counter() - self._last_figures >= float(self.settings.figures_min_interval_s):
            self._figures()
        limit = int(self.settings.max_consecutive_failures)
        if self.consecutive_failures >= limit:
            raise SearchError(
                f"{limit} candidates in a row failed (last: {record['status']}: {record['reason']}). "
                f"Failures so far: {dict(self.failures)}. Check the trainer limits "
                "(trainer.forward_time_limit_s, trainer.memory_limit_mb, trainer.time_budget_s) and the data; "
                "rerunning the same command resumes from here.")

    def _evaluate(self, proposal: Proposal, index: int) -> dict[str, Any]:
        arch = proposal.arch
        record = {"index": index, "iteration": None, "arch": arch.long_string, "val_acc": None,
                  "status": "ok", "reason": "", "origin": proposal.origin, "parent": proposal.parent,
                  "prediction": proposal.prediction, "num_params": arch.num_params,
                  "seed": derive_seed(self.seed, index), "seconds": {**proposal.seconds, "train": 0.0}}
        if proposal.known_accuracy is not None:
            record.update(val_acc=proposal.known_accuracy, copy_of=proposal.copy_of, reason="copy of a trained seed")
            return record
        from nas.training import evaluate_candidate  # heavy import, only when training

        result = evaluate_candidate(arch, self.datamodule, self.trainer_cfg, space=self.space,
                                    seed=record["seed"], data_seed=record["seed"])
        record.update(val_acc=result.val_acc, status=result.status, reason=result.reason)
        record["seconds"]["train"] = result.seconds
        if result.status == "ok" and not result.val_acc:
            record.update(status="zero_acc", reason="validation accuracy is exactly 0 (counted as failed, as in the paper)")
        return record

    # ---------------------------------------------------------------------------- logging
    def run_name(self) -> str:
        c = self.cfg
        return f"{c.dataset.name}/{c.strategy.name}-{c.surrogate.name}-{c.encoding.name}/seed={self.seed}"

    def best_accuracy(self) -> float | None:
        accs = [r["val_acc"] for r in self.archive.records if r["status"] == "ok"]
        return max(accs) if accs else None

    def _log_iteration(self, record: dict[str, Any]) -> None:
        self.logger.log({"search/iteration": record["iteration"], "search/val_acc": record["val_acc"],
                         "search/best_val_acc": self.best_accuracy(),
                         "search/n_failed": sum(self.failures.values()),
                         "search/num_params": record["num_params"],
                         "search/train_seconds": record["seconds"].get("train", 0.0)}, step=record["iteration"])

    def _log_events(self, events: dict[str, Any]) -> None:
        refit = events.get("refit")
        if refit is None:
            return
        chosen = [r for r in self.archive.records[self.last_refit_index:]
                  if r.get("prediction") is not None and r["status"] == "ok"]
        metrics = rank_metrics([r["prediction"] for r in chosen], [r["val_acc"] for r in chosen]) if chosen else {}
        iteration = self.strategy.iteration
        row = {"search/iteration": iteration, "surrogate/fit_seconds": refit.get("fit_seconds", 0.0),
               "surrogate/n_train": refit.get("n_train", 0), "surrogate/n_scored": len(chosen)}
        if len(chosen) >= 2:
            row.update({"surrogate/kendall_tau": metrics["kendall_tau"], "surrogate/spearman": metrics["spearman"]})
        self.logger.log(row, step=iteration)
        if chosen:
            import pandas as pd

            self.logger.table(f"predicted_vs_true_it{iteration}", pd.DataFrame(
                {"index": [r["index"] for r in chosen], "prediction": [r["prediction"] for r in chosen],
                 "val_acc": [r["val_acc"] for r in chosen]}))
        self.last_refit_index = len(self.archive)

    def _write_features(self) -> None:
        """``features.csv`` (id, the encoder's columns, accuracy) for a feature-based surrogate."""
        encoder = getattr(self.surrogate, "encoder", None)
        if encoder is not None and any(r["status"] in TRAINED_STATUSES for r in self.archive.records):
            frame = feature_table(self.archive.records, self.space, encoder)
            settings = search_settings(to_jsonable(experiment_config(self.cfg)))
            write_feature_table(self.run_dir / "features.csv", frame, settings, "search")

    def _figures(self) -> None:
        self._last_figures = time.perf_counter()
        try:
            self._write_features()
        except Exception as err:  # derived output: never stops a search
            log.warning("could not write features.csv: %s", err)
        try:
            from nas.search.figures import write_search_figures

            write_search_figures(self.archive.records, self.run_dir / "figures", title=self.run_name())
        except Exception as err:  # a plot must never stop a search
            log.warning("could not write figures: %s", err)

    def _checkpoint(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT, self._state())

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._started

    # ----------------------------------------------------------------------------- result
    def _finish(self) -> dict[str, Any]:
        ok = [r for r in self.archive.records if r["status"] == "ok"]
        best = max(ok, key=lambda r: r["val_acc"]) if ok else None
        trained = [r for r in ok if r["origin"] != "seed_copy"]
        result = {
            "run": self.run_name(), "best": None if best is None else {
                "val_acc": best["val_acc"], "arch": best["arch"], "index": best["index"],
                "iteration": best["iteration"], "short": self.space.parse(best["arch"]).short_string},
            "iterations": self.strategy.iteration, "budget": self.budget,
            "candidates": {"evaluated": len(self.archive), "trained_ok": len(trained),
                           "seed_copies": len(ok) - len(trained), "failed": sum(self.failures.values()),
                           "failed_by_status": dict(self.failures),
                           "bred_rejected_by_prechecks": dict(self.strategy.precheck_failures)},
            "seeds": self._seed_report(),
            "wall_seconds": self._elapsed(), "strategy_seconds": dict(self.strategy.timings),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
        }
        # result.json comes last: it marks the search as finished (a rerun then rewrites nothing),
        # so a kill while the figures are drawn or the summary is logged redoes them.
        self._figures()
        summary = {"best_val_acc": None if best is None else best["val_acc"], "iterations": self.strategy.iteration,
                   "n_failed": sum(self.failures.values()), "wall_seconds": result["wall_seconds"],
                   "n_seeds_failed": len(result["seeds"]["failed"])}
        self.logger.summary(summary)
        atomic_write_text(self.run_dir / RESULT, json.dumps(to_jsonable(result), indent=2))
        return result

    def _seed_report(self) -> dict[str, Any]:
        """The seed architectures asked for, those trained and those that failed (with why)."""
        names = list(getattr(self.strategy, "seed_names", []))
        trained = dict(getattr(self.strategy, "trained_seeds", {}))
        failed = {name: {"index": i, "status": None if i is None else self.archive.records[i]["status"],
                         "reason": None if i is None else self.archive.records[i]["reason"]}
                  for name, i in getattr(self.strategy, "failed_seeds", {}).items()}
        return {"requested": names, "trained": trained, "failed": failed}


def _without_name(node: DictConfig) -> DictConfig:
    plain = OmegaConf.to_container(node, resolve=True)
    plain.pop("name", None)
    return OmegaConf.create(plain)


def _open_log_files(run_dir: Path) -> set[Path]:
    """Files in ``run_dir`` that this process's logging handlers write (Hydra's job log)."""
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    root = run_dir.resolve()
    found = set()
    for logger in loggers:
        for handler in logger.handlers:
            name = getattr(handler, "baseFilename", None)
            if name and Path(name).resolve().parent == root:
                found.add(Path(name).resolve())
    return found


def _remove_stale_temporary_files(run_dir: Path) -> None:
    """Remove ``.<name>.<pid>.tmp`` files that a process killed during an atomic write left in the
    run dir, ``figures/`` or ``tables/`` (the file they were to replace is intact). Only for
    processes of this host that are gone; the name says which process wrote it."""
    for path in [p for folder in (run_dir, run_dir / "figures", run_dir / "tables") for p in folder.glob(".*.tmp")]:
        match = re.fullmatch(r"\.(.+)\.(\d+)\.tmp", path.name)
        if match is None or int(match.group(2)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(2)), 0)
            continue  # that process still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        path.unlink(missing_ok=True)
        log.info("removed %s, left by a process killed while writing %s", path, match.group(1))
