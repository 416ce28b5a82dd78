"""Regularised evolution (Real et al.; seed_system.md §3.2).

The first ``population_size`` iterations fill the population (random samples, or seeds: each
distinct seed trained once, its copies reuse the accuracy, as in einspace's mixed-seed runs).
Afterwards each iteration trains the mutant of a tournament winner (k draws with replacement)
and the oldest member leaves. After ``n_tries`` consecutive failed tries (a mutation that found
no valid mutant, or a candidate that failed to train) the next proposal is a fresh random
sample, as in the paper's code.

With several candidates in flight (``search.workers``) the initial population is exactly
``population_size`` trained candidates, as with one: no more initial candidates are handed out
than can still complete it (``ask`` waits), so nothing is in flight when it is complete and the
shared first generation is the same kind of state as a sequential run's. A seed architecture is
trained once: its copies wait until it has been trained. Evolution then runs its tournament over
the population as it is when a worker asks.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

from nas.search.strategies.base import Member, Proposal, Strategy, tournament


class RegularisedEvolution(Strategy):
    name = "regularised_evolution"

    def __init__(self, space, rng, surrogate=None, budget: int = 0, population_size: int = 100,
                 tournament_size: int = 10, mutation_rate: float = 1.0, n_tries: int = 10,
                 regularised: bool = True, seeds: str | list[str] | None = None):
        super().__init__(space, rng, surrogate, budget)
        if population_size < 1 or tournament_size < 1:
            raise ValueError("population_size and tournament_size must be >= 1")
        if budget and budget < population_size:
            raise ValueError(
                f"budget {budget} is smaller than the population ({population_size}): the search would "
                f"end before evolution starts. Raise search.budget or lower strategy.population_size.")
        self.population_size, self.tournament_size = population_size, tournament_size
        self.mutation_rate, self.n_tries, self.regularised = mutation_rate, n_tries, regularised
        self.seed_names = _seed_list(seeds)
        unknown = [s for s in self.seed_names if s not in space.seed_names()]
        if unknown:
            raise ValueError(f"unknown seed architecture(s) {unknown}; known: {space.seed_names()}")
        self.population: deque[Member] = deque()
        self.failed_tries = 0
        self.trained_seeds: dict[str, int] = {}  # seed name -> archive index of its training
        self.failed_seeds: dict[str, int] = {}  # seed name -> archive index of its failed training

    @property
    def first_generation_size(self) -> int:
        return self.population_size

    def first_generation_state(self) -> dict[str, Any]:
        state = self.state_dict()
        return {key: state[key] for key in ("iteration", "population", "failed_tries", "trained_seeds",
                                            "failed_seeds")}

    # ------------------------------------------------------------------------------- ask

    def ask(self) -> Proposal | None:
        if self.initialising:
            return self.initial_proposal()
        return self.evolve_proposal()

    def initial_proposal(self) -> Proposal | None:
        """The next member of the initial population; None (wait) while the candidates in flight
        may complete it, or while the seed this slot copies is being trained."""
        slot = self.iteration + len(self.in_flight)
        if slot >= self.population_size:
            return None
        if not self.seed_names:
            return self.random_proposal()
        name = self.seed_names[slot % len(self.seed_names)]
        if any(p.origin == "seed" and p.seed_name == name for p in self.in_flight):
            return None
        if name in self.failed_seeds:
            # A seed that cannot train here: its slots are random samples. The runner warns, and
            # result.json lists the failed seeds with their reasons.
            return self.random_proposal()
        if name in self.trained_seeds:
            source = next(m for m in self.population if m.index == self.trained_seeds[name])
            return Proposal(source.arch, "seed_copy", known_accuracy=source.accuracy, copy_of=source.index)
        start = time.perf_counter()
        return Proposal(self.space.seed(name), "seed", seconds={"sample": time.perf_counter() - start},
                        seed_name=name)

    def evolve_proposal(self) -> Proposal:
        start = time.perf_counter()
        while self.failed_tries < self.n_tries:
            parent = tournament(list(self.population), self.tournament_size, self.rng)
            child = parent.arch if self.rng.random() >= self.mutation_rate else self.mutate(parent.arch)
            if child is not None:
                return Proposal(child, "mutation", parent=parent.index,
                                seconds={"sample": time.perf_counter() - start})
            self.failed_tries += 1
        proposal = self.random_proposal("fallback")
        proposal.seconds["sample"] = time.perf_counter() - start
        return proposal

    # ------------------------------------------------------------------------------ tell
    def tell(self, proposal: Proposal, index: int, accuracy: float | None) -> dict[str, Any]:
        events = super().tell(proposal, index, accuracy)
        if accuracy is None:
            self.failed_tries += 1
            if proposal.origin == "seed":
                self.failed_seeds[proposal.seed_name] = index
            return events
        self.failed_tries = 0
        if proposal.origin == "seed":
            self.trained_seeds[proposal.seed_name] = index
        self.add_member(Member(index, proposal.arch, accuracy))
        return events

    def add_member(self, member: Member) -> None:
        self.population.append(member)
        if self.regularised and len(self.population) > self.population_size:
            self.population.popleft()  # the oldest leaves
        elif not self.regularised and len(self.population) > self.population_size:
            self.population.remove(min(self.population, key=lambda m: m.accuracy))

    # ------------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": [[m.index, m.accuracy] for m in self.population],
                "failed_tries": self.failed_tries, "trained_seeds": self.trained_seeds,
                "failed_seeds": self.failed_seeds}

    def load_state_dict(self, state, archive) -> None:
        super().load_state_dict(state, archive)
        self.population = deque(Member(i, self.resolve(archive, i), acc) for i, acc in state["population"])
        self.failed_tries = state["failed_tries"]
        self.trained_seeds = dict(state["trained_seeds"])
        failed = state["failed_seeds"]  # older checkpoints hold a list of names
        self.failed_seeds = dict(failed) if isinstance(failed, dict) else {name: None for name in failed}


def _seed_list(seeds) -> list[str]:
    if not seeds:
        return []
    if isinstance(seeds, str):
        return [s.strip() for s in seeds.split("+") if s.strip()]
    return [str(s) for s in seeds]
