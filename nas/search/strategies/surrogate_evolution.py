"""Surrogate-filtered evolution, the paper's method (``surrogate_sample_evolution`` in its code;
seed_system.md §3.3), and its rejection-filter variant.

After ``surrogate_start`` iterations: breed ``n_sampled`` mutants of tournament winners from the
current population, score them with the surrogate in one batch, and train them best-first until
``n_chosen`` succeed; they enter the population one per iteration. If none of a batch succeeds,
one normally evolved candidate is trained instead. Bred children pass the training pre-checks
(memory estimate, forward time: ``precheck``, set by the runner) before they are scored, and
breeding goes on until ``n_sampled`` pass, as in the original. The surrogate is fitted once when
the initial population is complete and again at the original's iterations: after the candidate
with 0-based iteration index i is trained, when i >= surrogate_start and i % refit_every == 0
(so after 100, 101, 121, ..., 281 trained candidates at the paper's settings), on the whole
archive of trained candidates (``fit_on_archive``) or on the current population.

The queue of scored proposals is part of the checkpoint, so a resumed run continues the same
batch (the paper's code regenerated it). With a surrogate whose scores ignore the architecture
(``random``), a batch is n_sampled scores over the population snapshot and each candidate is bred
only when its turn comes: the same distribution as breeding all n_sampled up front (offspring
are i.i.d. and independent of their scores) without the mutations that are never trained.

With several candidates in flight (``search.workers``) each batch has a number, carried by its
proposals: only results of the current batch count towards its ``n_chosen``, so up to
``workers - 1`` more of a batch may finish after it closed (they enter the population as any
trained candidate). Whether a whole batch failed is known only when none of it is in flight.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from nas.search.strategies.base import Member, Proposal, tournament
from nas.search.strategies.evolution import RegularisedEvolution


class SurrogateEvolution(RegularisedEvolution):
    name = "surrogate_evolution"
    uses_surrogate = True

    def __init__(self, space, rng, surrogate=None, budget: int = 0, surrogate_start: int | None = None,
                 n_sampled: int = 20, n_chosen: int = 5, refit_every: int = 20, fit_on_archive: bool = True,
                 **evolution):
        super().__init__(space, rng, surrogate, budget, **evolution)
        if surrogate is None or surrogate.name == "none":
            raise ValueError(f"strategy {self.name} needs a surrogate: set surrogate=random (the paper's RE "
                             "baseline) or a predictor such as surrogate=rf")
        if not 1 <= n_chosen <= n_sampled:
            raise ValueError(f"need 1 <= n_chosen ({n_chosen}) <= n_sampled ({n_sampled})")
        self.surrogate_start = self.population_size if surrogate_start is None else surrogate_start
        self.n_sampled, self.n_chosen = n_sampled, n_chosen
        self.refit_every, self.fit_on_archive = refit_every, fit_on_archive
        self.queue: list[Proposal] = []
        self.chosen_in_batch = 0
        self.batch_open = False  # a scored batch is being trained
        self.batch_id = 0  # numbers the batches; a proposal's ``batch`` says which one it is from
        self.batch_parents: list[Member] = []  # the population snapshot the batch is bred from
        self.trained: list[Member] = []  # every successfully trained candidate (fit data)
        self.last_fit: list[int] = []  # archive indices the surrogate was last fitted on

    # ------------------------------------------------------------------------------- ask
    def ask(self) -> Proposal | None:
        if self.initialising or self.iteration < self.surrogate_start:
            return super().ask()
        if not self.queue:
            if self.batch_open and self.chosen_in_batch == 0:
                if any(self._in_batch(p) for p in self.in_flight):
                    return None  # wait: the batch's last candidates may still succeed
                self.batch_open = False  # the whole batch failed: one normally evolved candidate
                return self.evolve_proposal()
            self.batch_parents = list(self.population)
            lazy = self.surrogate.input_independent
            slots = [Proposal(None, "surrogate") for _ in range(self.n_sampled)] if lazy else self.breed(self.n_sampled)
            self.batch_id += 1
            for slot in slots:
                slot.batch = self.batch_id
            self.queue = self.score_batch(slots)
            self.chosen_in_batch, self.batch_open = 0, bool(self.queue)
            if not self.queue:  # the filter rejected every proposal
                return self.evolve_proposal()
        proposal = self.queue.pop(0)
        if proposal.arch is None:
            bred = self.breed(1)[0]
            proposal.arch, proposal.parent, proposal.origin = bred.arch, bred.parent, bred.origin
            proposal.seconds.update(bred.seconds)
        return proposal

    def breed(self, n: int) -> list[Proposal]:
        """n offspring of tournament winners from the population snapshot of this batch, each
        past the pre-checks (a child that fails them is bred again, as in the original)."""
        population = self.batch_parents
        proposals = []
        rejected_in_a_row = 0
        while len(proposals) < n:
            start = time.perf_counter()
            proposal = None
            for _ in range(self.n_tries):
                parent = tournament(population, self.tournament_size, self.rng)
                child = self.mutate(parent.arch)
                if child is not None:
                    proposal = Proposal(child, "surrogate", parent=parent.index)
                    break
            if proposal is None:
                proposal = self.random_proposal("surrogate")
            proposal.seconds["sample"] = time.perf_counter() - start
            if not self.passes_prechecks(proposal):
                rejected_in_a_row += 1
                if rejected_in_a_row >= self.max_precheck_rejections:
                    raise RuntimeError(
                        f"{rejected_in_a_row} bred children in a row failed the pre-checks "
                        f"({dict(self.precheck_failures)}); check the trainer limits "
                        "(trainer.forward_time_limit_s, the memory limit)")
                continue
            rejected_in_a_row = 0
            proposals.append(proposal)
        return proposals

    def score_batch(self, proposals: list[Proposal]) -> list[Proposal]:
        """One encode + predict over the batch; best predicted first (stable on ties)."""
        start = time.perf_counter()
        features = self.surrogate.encode([p.arch for p in proposals])  # None: bred later (lazy)
        encoded = time.perf_counter()
        scores = np.asarray(self.surrogate.predict(features), dtype=float)
        predicted = time.perf_counter()
        self.timings.update(encode=encoded - start, predict=predicted - encoded)
        for proposal, score in zip(proposals, scores, strict=True):
            proposal.prediction = float(score)
            proposal.seconds.update(encode=(encoded - start) / len(proposals),
                                    predict=(predicted - encoded) / len(proposals))
        return self.select(proposals)

    def select(self, proposals: list[Proposal]) -> list[Proposal]:
        order = sorted(range(len(proposals)), key=lambda i: -proposals[i].prediction)
        return [proposals[i] for i in order]

    # ------------------------------------------------------------------------------ tell
    def tell(self, proposal: Proposal, index: int, accuracy: float | None) -> dict[str, Any]:
        events = super().tell(proposal, index, accuracy)
        if accuracy is None:
            return events
        self.trained.append(Member(index, proposal.arch, accuracy))
        if self._in_batch(proposal):
            self.chosen_in_batch += 1
            if self.chosen_in_batch >= self.n_chosen:
                self.queue, self.batch_open = [], False
        return {**events, **self._maybe_refit()}

    def _in_batch(self, proposal: Proposal) -> bool:
        """A candidate of the current batch (proposals without a number come from checkpoints
        written before batches were numbered, when only the current batch could be trained)."""
        return proposal.origin == "surrogate" and proposal.batch in (None, self.batch_id)

    def after_first_generation(self) -> dict[str, Any]:
        """A shared first generation was loaded: catch up with what ``tell`` did meanwhile."""
        self.trained = list(self.population)
        return self._maybe_refit()

    def _maybe_refit(self) -> dict[str, Any]:
        if not self._refit_due():
            return {}
        if self.surrogate.needs_fit:
            return {"refit": self.refit()}
        return {"refit": {"n_train": 0, "fit_seconds": 0.0}}

    def _refit_due(self) -> bool:
        """Once when the initial population is complete, then as the original: after the candidate
        whose 0-based iteration index ``i`` (the original's loop variable) has
        ``i >= surrogate_start`` and ``i % refit_every == 0``."""
        if self.iteration == self.population_size:
            return True
        i = self.iteration - 1
        return i >= max(self.surrogate_start, self.population_size) and i % self.refit_every == 0

    def refit(self) -> dict[str, Any]:
        members = self.trained if self.fit_on_archive else list(self.population)
        start = time.perf_counter()
        features = self.surrogate.encode([m.arch for m in members])
        encoded = time.perf_counter()
        self.surrogate.fit(features, [m.accuracy for m in members])
        self.last_fit = [m.index for m in members]
        self.timings.update(encode=encoded - start, fit=time.perf_counter() - encoded)
        return {"n_train": len(members), "fit_seconds": time.perf_counter() - start}

    # ------------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        queue = [{"arch": None if p.arch is None else p.arch.long_string, "parent": p.parent,
                  "prediction": p.prediction, "origin": p.origin, "batch": p.batch} for p in self.queue]
        return {**super().state_dict(), "queue": queue, "chosen_in_batch": self.chosen_in_batch,
                "batch_open": self.batch_open, "batch_id": self.batch_id,
                "batch_parents": [[m.index, m.accuracy] for m in self.batch_parents],
                "trained": [[m.index, m.accuracy] for m in self.trained], "last_fit": self.last_fit,
                "surrogate": self.surrogate.state_dict(), "precheck_failures": dict(self.precheck_failures)}

    def load_state_dict(self, state, archive) -> None:
        super().load_state_dict(state, archive)
        self.queue = [Proposal(None if q["arch"] is None else self.space.parse(q["arch"]), q["origin"],
                               parent=q["parent"], prediction=q["prediction"], batch=q.get("batch"))
                      for q in state["queue"]]
        self.batch_id = state.get("batch_id", 0)  # not in older checkpoints
        self.batch_parents = [Member(i, self.resolve(archive, i), acc) for i, acc in state["batch_parents"]]
        self.chosen_in_batch, self.batch_open = state["chosen_in_batch"], state["batch_open"]
        self.trained = [Member(i, self.resolve(archive, i), acc) for i, acc in state["trained"]]
        self.last_fit = list(state["last_fit"])
        self.precheck_failures.update(state.get("precheck_failures", {}))
        self.surrogate.load_state_dict(state["surrogate"])
        # Refit on exactly the same data, unless the surrogate restored its fitted model itself
        # (a language model's fine-tuned weights, which a refit would not give back).
        if self.last_fit and self.surrogate.needs_fit and not getattr(self.surrogate, "restores_fit", False):
            by_index = {m.index: m for m in self.trained}
            members = [by_index[i] for i in self.last_fit]
            self.surrogate.fit(self.surrogate.encode([m.arch for m in members]), [m.accuracy for m in members])


class RejectionFilter(SurrogateEvolution):
    """Train the bred mutants in proposal order, skipping those predicted at or below the
    ``quantile`` of the fitted accuracies (0.5: the median), until ``n_chosen`` succeed."""

    name = "rejection_filter"

    def __init__(self, *args, quantile: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= quantile < 1.0:
            raise ValueError(f"quantile must lie in [0, 1), got {quantile}")
        self.quantile = quantile
        self.threshold = float("-inf")
        self.rejected = 0

    def refit(self) -> dict[str, Any]:
        info = super().refit()
        accs = sorted((m.accuracy for m in (self.trained if self.fit_on_archive else self.population)),
                      reverse=True)
        self.threshold = accs[int(len(accs) * self.quantile)] if accs else float("-inf")
        return {**info, "threshold": self.threshold}

    def select(self, proposals: list[Proposal]) -> list[Proposal]:
        kept = [p for p in proposals if p.prediction > self.threshold]
        self.rejected += len(proposals) - len(kept)
        return kept

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "threshold": self.threshold, "rejected": self.rejected}

    def load_state_dict(self, state, archive) -> None:
        super().load_state_dict(state, archive)
        self.threshold, self.rejected = state["threshold"], state["rejected"]
