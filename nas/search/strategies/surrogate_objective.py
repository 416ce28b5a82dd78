"""The surrogate as the objective (the paper's ``surrogate_as_obj`` branch, seed_system.md §8.7).

After ``surrogate_start`` trained iterations the surrogate is fitted and evolution continues for
``objective_steps`` steps with the *prediction* as fitness (no training: cheap). Predictions are
only ever compared with predictions: the trained population enters the predicted phase with the
surrogate's scores for its members (not their true accuracies, which live on another scale,
e.g. tr_rf's normalised targets), the tournaments compare those scores, and the running best
starts at the population's best predicted score. Every architecture that improves the
running-best prediction by more than ``min_improvement`` is queued, and those running-best
architectures are then trained for real, one per iteration, until the queue or the budget ends.
"""
from __future__ import annotations

import time
from typing import Any

from nas.search.strategies.base import Member, Proposal, tournament
from nas.search.strategies.surrogate_evolution import SurrogateEvolution


class SurrogateObjective(SurrogateEvolution):
    name = "surrogate_objective"

    def __init__(self, *args, objective_steps: int = 500, min_improvement: float = 0.005, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective_steps, self.min_improvement = objective_steps, min_improvement
        self.posthoc: list[Proposal] | None = None  # None until the predicted phase has run
        self.predicted_steps = 0

    def ask(self) -> Proposal | None:
        if self.initialising or self.iteration < self.surrogate_start:
            return self.evolve_proposal() if not self.initialising else self.initial_proposal()
        if self.posthoc is None:
            if self.in_flight:  # the predicted phase starts from the whole trained population
                return None
            self.posthoc = self.run_predicted_evolution()
        return self.posthoc.pop(0) if self.posthoc else None

    def run_predicted_evolution(self) -> list[Proposal]:
        if self.surrogate.needs_fit:
            self.refit()
        members = list(self.population)
        scores = self.surrogate.predict(self.surrogate.encode([m.arch for m in members]))
        population = [Member(m.index, m.arch, float(score)) for m, score in zip(members, scores, strict=True)]
        best, running_best = max(m.accuracy for m in population), []
        for _ in range(self.objective_steps):
            start = time.perf_counter()
            parent = tournament(population, self.tournament_size, self.rng)
            child = self.mutate(parent.arch)
            if child is None:
                continue
            proposal = Proposal(child, "posthoc", parent=parent.index if parent.index >= 0 else None)
            if not self.passes_prechecks(proposal):  # as the original: checked before it is scored
                continue
            score = float(self.surrogate.predict(self.surrogate.encode([child]))[0])
            self.predicted_steps += 1
            population.append(Member(-1, child, score))
            if self.regularised and len(population) > self.population_size:
                population.pop(0)
            if score > best + self.min_improvement:
                best = score
                proposal.prediction = score
                proposal.seconds["sample"] = time.perf_counter() - start
                running_best.append(proposal)
        return running_best

    def tell(self, proposal: Proposal, index: int, accuracy: float | None) -> dict[str, Any]:
        if proposal.origin != "posthoc":
            return super().tell(proposal, index, accuracy)
        if accuracy is not None:
            self.iteration += 1
            self.trained.append(Member(index, proposal.arch, accuracy))
        return {}

    def state_dict(self) -> dict[str, Any]:
        posthoc = None if self.posthoc is None else [
            {"arch": p.arch.long_string, "prediction": p.prediction} for p in self.posthoc]
        return {**super().state_dict(), "posthoc": posthoc, "predicted_steps": self.predicted_steps}

    def load_state_dict(self, state, archive) -> None:
        super().load_state_dict(state, archive)
        self.predicted_steps = state["predicted_steps"]
        self.posthoc = None if state["posthoc"] is None else [
            Proposal(self.space.parse(p["arch"]), "posthoc", prediction=p["prediction"]) for p in state["posthoc"]]
