"""Random search: every candidate is an independent sample of the grammar."""
from __future__ import annotations

from nas.search.strategies.base import Proposal, Strategy


class RandomSearch(Strategy):
    name = "random_search"

    def __init__(self, space, rng, surrogate=None, budget: int = 0, population_size: int | None = None):
        """``population_size`` is accepted and unused, so one override serves a sweep over
        strategies (``conf/search.yaml`` sets it for every strategy)."""
        super().__init__(space, rng, surrogate, budget)

    def ask(self) -> Proposal:
        return self.random_proposal()
