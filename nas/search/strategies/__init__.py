"""Search strategies behind a registry: ``STRATEGIES`` (name -> class) and ``list_strategies()``.
A search builds its strategy from ``conf/strategy/<name>.yaml`` (``_target_``)."""
from nas.search.strategies.base import Member, Proposal, Strategy
from nas.search.strategies.evolution import RegularisedEvolution
from nas.search.strategies.random_search import RandomSearch
from nas.search.strategies.surrogate_evolution import RejectionFilter, SurrogateEvolution
from nas.search.strategies.surrogate_objective import SurrogateObjective

STRATEGIES = {cls.name: cls for cls in (RandomSearch, RegularisedEvolution, SurrogateEvolution,
                                         RejectionFilter, SurrogateObjective)}


def list_strategies() -> list[str]:
    return sorted(STRATEGIES)


__all__ = ["Member", "Proposal", "Strategy", "STRATEGIES", "list_strategies"]
