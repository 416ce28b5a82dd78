"""Ask/tell building blocks shared by the strategies.

A strategy proposes one candidate at a time (``ask``) and hears its result (``tell``). The runner
owns evaluation, the archive, checkpoints and logging; strategies only hold the search state,
which they serialise by *archive index* (``state_dict``), so checkpoints stay small and the
archive stays the single source of truth for architectures and accuracies.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nas.space import Architecture, EinSpace, MutationError

INITIAL_ORIGINS = ("random", "seed", "seed_copy")


@dataclass
class Proposal:
    """A candidate to evaluate, with where it came from.

    ``known_accuracy`` is set for seed copies (each distinct seed is trained once and its copies
    reuse the accuracy); ``prediction`` is the surrogate's score when it chose the candidate.
    """

    arch: Architecture
    origin: str
    parent: int | None = None
    prediction: float | None = None
    known_accuracy: float | None = None
    copy_of: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    seed_name: str | None = None
    batch: int | None = None  # the surrogate batch it was chosen from (surrogate evolution)

    def to_dict(self) -> dict[str, Any]:
        """JSON for the checkpoint's candidates in flight (the architecture as its long string)."""
        return {"arch": self.arch.long_string, "origin": self.origin, "parent": self.parent,
                "prediction": self.prediction, "known_accuracy": self.known_accuracy, "copy_of": self.copy_of,
                "seconds": dict(self.seconds), "seed_name": self.seed_name, "batch": self.batch}

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: EinSpace) -> Proposal:
        return cls(space.parse(data["arch"]), **{k: v for k, v in data.items() if k != "arch"})


@dataclass
class Member:
    """A trained population member: archive index, architecture, validation accuracy."""

    index: int
    arch: Architecture
    accuracy: float


class Strategy:
    """Base class: the random-sampling machinery every strategy needs."""

    name = "base"
    uses_surrogate = False
    # After this many bred children in a row fail the pre-checks, breeding gives up with a message.
    max_precheck_rejections = 1000

    def __init__(self, space: EinSpace, rng: random.Random, surrogate=None, budget: int = 0):
        self.space, self.rng, self.surrogate, self.budget = space, rng, surrogate, budget
        self.iteration = 0  # counted (successfully trained) candidates so far
        # Seconds spent on all proposals, trained or not: sample (sampling and mutation), encode,
        # predict, fit. Per-candidate shares are in the archive; these totals are for benchmarks.
        self.timings: Counter = Counter()
        self._resolved: dict[int, Architecture] = {}  # archive index -> parsed architecture
        # The training pre-checks (memory, forward time) for candidates that must pass them before
        # they are scored: ``precheck(arch) -> (status, reason) | None``; the runner sets it.
        self.precheck: Callable[[Architecture], tuple[str, str] | None] | None = None
        self.precheck_failures: Counter = Counter()  # status -> bred children rejected
        # Proposals handed out and not yet told, oldest first (kept by the runner: with
        # search.workers > 1 several candidates train at once). ``ask`` may return None to wait
        # for one of them when what comes next depends on its result.
        self.in_flight: list[Proposal] = []

    def ask(self) -> Proposal | None:
        """The next candidate, or None when the strategy has nothing to propose before the
        candidates in flight are told (nothing at all, when none is in flight)."""
        raise NotImplementedError

    def tell(self, proposal: Proposal, index: int, accuracy: float | None) -> dict[str, Any]:
        """Result of a proposal: its archive index and accuracy (None = failed, not counted).

        Returns events for the runner to log (e.g. ``{"refit": {...}}``)."""
        if accuracy is not None:
            self.iteration += 1
        return {}

    # ------------------------------------------------------------ first generation and seeds
    # The runner shares a strategy's trained initial population between runs (the arms of the
    # paper's comparison); these members say whether there is one, and what it consists of.
    seed_names: tuple[str, ...] | list[str] = ()  # seed architectures asked for
    trained_seeds: dict[str, int] = {}  # seed name -> archive index of its training (read-only here)
    failed_seeds: dict[str, int] = {}  # seed name -> archive index of its failed training

    @property
    def first_generation_size(self) -> int | None:
        """Trained candidates that make up the initial population, or None when the strategy has
        none to share (random search)."""
        return None

    @property
    def initialising(self) -> bool:
        """True while the initial population is being trained."""
        size = self.first_generation_size
        return size is not None and self.iteration < size

    def first_generation_state(self) -> dict[str, Any]:
        """The part of ``state_dict`` that the initial population determines (shared with other
        runs; the rest of the state, a surrogate's, is each run's own)."""
        return {"iteration": self.iteration}

    def after_first_generation(self) -> dict[str, Any]:
        """A shared first generation was loaded: catch up with what ``tell`` would have done.
        Returns events like ``tell``."""
        return {}

    # ------------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any], archive: list[dict]) -> None:
        """Restore from ``state_dict``; ``archive`` holds the records its indices refer to."""
        self.iteration = state["iteration"]

    # ---------------------------------------------------------------------------- helpers
    def _seed(self) -> int:
        return self.rng.randrange(2**31)

    def random_proposal(self, origin: str = "random") -> Proposal:
        start = time.perf_counter()
        arch = self.space.sample(self._seed())
        seconds = time.perf_counter() - start
        self.timings["sample"] += seconds
        return Proposal(arch, origin, seconds={"sample": seconds})

    def passes_prechecks(self, proposal: Proposal) -> bool:
        """Run the pre-checks on a proposal (timed as sampling); count the rejections."""
        if self.precheck is None:
            return True
        start = time.perf_counter()
        failure = self.precheck(proposal.arch)
        seconds = time.perf_counter() - start
        self.timings["precheck"] += seconds
        proposal.seconds["precheck"] = proposal.seconds.get("precheck", 0.0) + seconds
        if failure is None:
            return True
        self.precheck_failures[failure[0]] += 1
        return False

    def mutate(self, arch: Architecture) -> Architecture | None:
        """A mutant of ``arch`` (None when no valid mutant was found), timed as sampling."""
        start = time.perf_counter()
        try:
            return self.space.mutate(arch, self._seed())
        except MutationError:
            return None
        finally:
            self.timings["sample"] += time.perf_counter() - start

    def resolve(self, archive: list[dict], index: int) -> Architecture:
        """The architecture of archive record ``index``, parsed once: population, trained list and
        batch snapshot share most records when a checkpoint is loaded."""
        if index not in self._resolved:
            self._resolved[index] = self.space.parse(record_of(archive, index)["arch"])
        return self._resolved[index]


def record_of(archive: list[dict], index: int) -> dict:
    """The record with archive index ``index``: at that position when candidates completed in
    the order they were proposed (always with one worker), else found by its ``index`` field
    (with several workers the archive is in completion order)."""
    if 0 <= index < len(archive) and archive[index].get("index") == index:
        return archive[index]
    for record in archive:
        if record.get("index") == index:
            return record
    raise KeyError(f"no archive record with index {index}")


def tournament(population: list[Member], k: int, rng: random.Random) -> Member:
    """k draws with replacement, uniformly; the most accurate wins (the first on ties)."""
    best = None
    for _ in range(k):
        member = population[rng.randrange(len(population))]
        if best is None or member.accuracy > best.accuracy:
            best = member
    return best
