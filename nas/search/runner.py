"""The search loop: ask, evaluate, archive, tell, checkpoint, log, plot. Resumable at any moment.

Determinism: the strategy draws from one ``random.Random`` whose state is checkpointed after
every evaluated candidate, and candidate ``i`` of the archive is trained with a seed derived
from (run seed, i). A run killed at any moment and restarted therefore redoes the interrupted
candidate identically and ends with the same archive as an uninterrupted run (on CPU).

Several candidates at once (``search.workers=N``, ``nas.search.workers``): the strategy is asked
for a candidate whenever a worker is free and told each result as it arrives; index ``i`` (and
with it the seed) is given when the candidate is proposed, and the archive is written in the
order candidates complete, each record with its ``index``. No more candidates are in flight
than the budget can still use, so a search ends with exactly ``budget`` trained iterations. The
checkpoint lists the candidates in flight; a resumed run trains them again first, with their own
indices and seeds, so nothing is lost and nothing enters the archive twice. With one worker
nothing is ever in flight at a checkpoint, and the archive is the sequential one.

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
import time
from collections import Counter
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from nas.logging import to_jsonable
from nas.search.checkpoint import (
    global_rng_states,
    load_checkpoint,
    python_rng_state,
    save_checkpoint,
    set_global_rng_states,
    set_python_rng_state,
)
from nas.search.components import ARCHIVE, build_components, check_names
from nas.search.errors import SearchError
from nas.search.first_generation import (
    FirstGenerationLock,
    FirstGenerationTimeout,
    first_generation_path,
    publish,
    wait_for,
)
from nas.search.hydra_record import HydraRecord
from nas.search.identity import config_digest, derive_seed, diff_configs, first_generation_key
from nas.search.progress import SearchProgress
from nas.search.replay import replay
from nas.search.reporting import SearchReport, best_accuracy, run_name
from nas.search.run_dir import (
    CHECKPOINT,
    EXPERIMENT,
    check_experiment,
    record_experiment,
    remove_stale_temporary_files,
    saved_result,
    set_aside_previous_run,
)
from nas.search.strategies.base import Proposal
from nas.search.workers import Task, make_pool

__all__ = ["SearchError", "SearchRunner"]

log = logging.getLogger(__name__)


class SearchRunner:
    """One search in one run directory: ``run()`` starts, resumes or reports it."""

    def __init__(self, cfg: DictConfig, run_dir: str | Path):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.settings = cfg.search
        self.seed = int(cfg.seed)
        self.budget = int(self.settings.budget)

    # --------------------------------------------------------------------------- the loop
    def run(self) -> dict[str, Any]:
        hydra = HydraRecord.of_current_job(self.run_dir)
        saved = self._open(hydra)
        if saved is not None:
            return saved
        self.report.start()  # before the first generation: loading one fits the surrogate, logged
        self.progress = self.pool = None
        try:
            # Workers start first: they load their data while the first generation is joined.
            self.pool = make_pool(self.cfg, self.run_dir, self.space, self.datamodule, self.trainer_cfg)
            self._join_first_generation()
            self.progress = SearchProgress(self.budget, self.strategy.iteration, bool(self.settings.progress),
                                           self.run_name())
            self._search()
            return self.report.finish(self.archive.records, self.strategy, self.failures, self.budget,
                                      self._elapsed())
        finally:
            if self.pool is not None:
                self.pool.close()
            self._release_first_generation_lock()
            if self.progress is not None:
                self.progress.close()
            self.report.close()

    def _search(self) -> None:
        """Keep every free worker busy while the budget can use another candidate; take results
        as they come. Ends when the budget is reached or the strategy has nothing more to train."""
        while True:
            self._fill_workers()
            if not self.in_flight:
                return
            for task, result in self.pool.wait():
                proposal = self.in_flight.pop(task.index)
                self._step(proposal, task.index, self._record(proposal, task.index, result))

    def _fill_workers(self) -> None:
        while self.pool.free() > 0:
            if self.resubmit:  # in flight when the run was stopped: trained again first
                index, proposal = self.resubmit.pop(0)
            else:
                if self.strategy.iteration + len(self.in_flight) >= self.budget:
                    return
                proposal, self.pending = self.pending or self.strategy.ask(), None
                if proposal is None:
                    return  # nothing before a result arrives (or nothing more at all)
                index, self.next_index = self.next_index, self.next_index + 1
                self.strategy.in_flight.append(proposal)
            if proposal.known_accuracy is not None:  # a seed's copy: nothing to train
                self._step(proposal, index, self._record(proposal, index))
                continue
            self.in_flight[index] = proposal
            self.pool.submit(Task(index, proposal.arch.long_string, derive_seed(self.seed, index)), proposal.arch)

    def _step(self, proposal: Proposal, index: int, record: dict[str, Any]) -> None:
        """Archive, tell, checkpoint; then log, plot, and stop after too many failures."""
        accuracy = record["val_acc"] if record["status"] == "ok" else None
        record["iteration"] = self.strategy.iteration if accuracy is not None else None
        self.archive.append(record)
        if self.first_gen_lock is not None:
            self.first_gen_lock.heartbeat()
        self.strategy.in_flight = [p for p in self.strategy.in_flight if p is not proposal]
        events = self.strategy.tell(proposal, index, accuracy)
        self._count(proposal, record, accuracy)
        self._log_events(events)
        if accuracy is not None and self.strategy.iteration == self.strategy.first_generation_size:
            self._save_first_generation()
        self._checkpoint()
        if accuracy is not None and self.report.figures_due(self.strategy.iteration):
            self.report.figures(self.archive.records)
        self.progress.update(self.strategy.iteration, self.best_accuracy(), sum(self.failures.values()))
        self._stop_after_too_many_failures(record)

    def _record(self, proposal: Proposal, index: int, result: dict[str, Any] | None = None) -> dict[str, Any]:
        """The archive record of candidate ``index``: its proposal and its training ``result``
        (None for a seed's copy, which takes the seed's accuracy)."""
        arch = proposal.arch
        record = {"index": index, "iteration": None, "arch": arch.long_string, "val_acc": None,
                  "status": "ok", "reason": "", "origin": proposal.origin, "parent": proposal.parent,
                  "prediction": proposal.prediction, "num_params": arch.num_params,
                  "seed": derive_seed(self.seed, index), "seconds": {**proposal.seconds, "train": 0.0}}
        if result is None:
            record.update(val_acc=proposal.known_accuracy, copy_of=proposal.copy_of, reason="copy of a trained seed")
            return record
        record.update(val_acc=result["val_acc"], status=result["status"], reason=result["reason"])
        record["seconds"]["train"] = result["seconds"]
        if result["status"] == "ok" and not result["val_acc"]:
            record.update(status="zero_acc", reason="validation accuracy is exactly 0 (counted as failed, as in the paper)")
        return record

    def _count(self, proposal: Proposal, record: dict[str, Any], accuracy: float | None) -> None:
        if accuracy is not None:
            self.consecutive_failures = 0
            self.report.trained(record, self.archive.records, sum(self.failures.values()))
            return
        self.failures[record["status"]] += 1
        self.consecutive_failures += 1
        if proposal.origin == "seed":
            log.warning("seed architecture %r failed (%s: %s); its places in the initial population "
                        "are filled with random samples (listed in result.json under 'seeds')",
                        proposal.seed_name, record["status"], record["reason"])

    def _stop_after_too_many_failures(self, record: dict[str, Any]) -> None:
        limit = int(self.settings.max_consecutive_failures)
        if self.consecutive_failures >= limit:
            raise SearchError(
                f"{limit} candidates in a row failed (last: {record['status']}: {record['reason']}). "
                f"Failures so far: {dict(self.failures)}. Check the trainer limits "
                "(trainer.forward_time_limit_s, trainer.memory_limit_mb, trainer.time_budget_s) and the data; "
                "rerunning the same command resumes from here.")

    def _log_events(self, events: dict[str, Any]) -> None:
        if events.get("refit") is not None:
            self.report.refit(events["refit"], self.archive.records[self.last_refit_index:], self.strategy.iteration)
            self.last_refit_index = len(self.archive)

    def run_name(self) -> str:
        return run_name(self.cfg)

    def best_accuracy(self) -> float | None:
        return best_accuracy(self.archive.records)

    # ----------------------------------------------------------------------------- set-up
    def _build(self) -> None:
        parts = build_components(self.cfg, self.run_dir, self.seed, self.budget)
        self.space, self.datamodule, self.trainer_cfg = parts.space, parts.datamodule, parts.trainer_cfg
        self.surrogate, self.rng, self.strategy, self.archive = parts.surrogate, parts.rng, parts.strategy, parts.archive

    def _open(self, hydra: HydraRecord) -> dict[str, Any] | None:
        """Build, check the run dir and load the state to continue from. Returns the saved result
        when the search has finished (nothing to do). A refused command leaves the run dir, its
        ``.hydra/`` included, describing the run in it."""
        self.first_gen_lock = None
        resuming = not self.settings.restart and (self.run_dir / EXPERIMENT).exists()
        try:
            check_names(self.cfg)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._build()
            self.report = SearchReport(self.cfg, self.run_dir, self.space, self.surrogate)
            self._started = time.perf_counter()
            if self.settings.restart:
                set_aside_previous_run(self.run_dir)
            check_experiment(self.run_dir, self.cfg)
            remove_stale_temporary_files(self.run_dir)
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
        record_experiment(self.run_dir, self.cfg)
        hydra.accept()
        return None

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
        self.in_flight: dict[int, Proposal] = {}  # archive index -> proposal being trained
        self.resubmit: list[tuple[int, Proposal]] = []  # in flight at the checkpoint: trained first
        self.next_index = 0  # the archive index the next proposal gets
        state = load_checkpoint(self.run_dir / CHECKPOINT)  # CheckpointError on damage
        if state is not None:
            saved = saved_result(self.run_dir, state["iteration"], state["archive_len"], self.budget)
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
            self.next_index = 0
            return None
        self._rebuild_from_archive(list(records))
        self.resumed = True
        if self.pending is not None:
            return None  # checkpointed once the pending proposal is evaluated; a kill before replays again
        saved = saved_result(self.run_dir, self.strategy.iteration, len(self.archive), self.budget)
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
        self.next_index = len(self.archive)
        self.consecutive_failures = done.consecutive_failures
        self.last_refit_index = done.last_refit_index
        self.elapsed_before = sum(sum((r.get("seconds") or {}).values()) for r in self.archive.records)

    def _load_state(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state["strategy"], self.archive.records)
        set_python_rng_state(self.rng, state["rng"])
        set_global_rng_states(state["global_rng"])
        self.failures = Counter(state["failures"])
        self.consecutive_failures = state["consecutive_failures"]
        self.elapsed_before = state["elapsed"]
        self.last_refit_index = state["last_refit_index"]
        self.strategy.timings = Counter(state.get("timings", {}))  # not in older checkpoints
        self.next_index = state.get("next_index", state["archive_len"])  # not in older checkpoints
        self.resubmit = [(item["index"], Proposal.from_dict(item["proposal"], self.space))
                         for item in state.get("in_flight", [])]
        self.strategy.in_flight = [proposal for _, proposal in self.resubmit]
        self.in_flight = {}
        if self.resubmit:
            log.info("%d candidate(s) were in flight when the run stopped (index %s): training them again",
                     len(self.resubmit), ", ".join(str(i) for i, _ in self.resubmit))

    def _state(self) -> dict[str, Any]:
        return {"archive_len": len(self.archive), "strategy": self.strategy.state_dict(),
                "rng": python_rng_state(self.rng), "global_rng": global_rng_states(),
                "failures": dict(self.failures), "consecutive_failures": self.consecutive_failures,
                "elapsed": self._elapsed(), "last_refit_index": self.last_refit_index,
                "iteration": self.strategy.iteration, "timings": dict(self.strategy.timings),
                "next_index": self.next_index,
                "in_flight": [{"index": i, "proposal": p.to_dict()} for i, p in self.in_flight.items()]
                + [{"index": i, "proposal": p.to_dict()} for i, p in self.resubmit]}

    # ------------------------------------------------------------------ first generation
    def _first_generation_path(self) -> Path | None:
        """Shared initial population of runs that differ only in strategy details or surrogate:
        ``<paths.output_dir>/first_generation/<dataset>/...`` (see ``nas.search.first_generation``)."""
        setting = self.settings.get("first_generation", "auto")
        if not setting or self.strategy.first_generation_size is None:
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
        self._log_events(self.strategy.after_first_generation())
        log.info("loaded the first generation (%d candidates) from %s", len(self.archive), path)
        self._checkpoint()

    def _save_first_generation(self) -> None:
        path = self._first_generation_path()
        if path is None or path.exists():
            self._release_first_generation_lock()
            return
        state = {**self._state(), "strategy": self.strategy.first_generation_state()}
        data = {"key": to_jsonable(first_generation_key(self.cfg)), "records": self.archive.records, "state": state}
        if publish(path, data):
            log.info("saved the first generation to %s", path)
        self._release_first_generation_lock()

    def _release_first_generation_lock(self) -> None:
        if getattr(self, "first_gen_lock", None) is not None:
            self.first_gen_lock.release()

    def _checkpoint(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT, self._state())

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._started
