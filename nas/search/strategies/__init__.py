"""Search strategies behind a registry: ``list_strategies()`` / ``create_strategy(name, ...)``."""
from nas.search.strategies.base import Member, Proposal, Strategy
from nas.search.strategies.evolution import RegularisedEvolution
from nas.search.strategies.random_search import RandomSearch
from nas.search.strategies.surrogate_evolution import RejectionFilter, SurrogateEvolution
from nas.search.strategies.surrogate_objective import SurrogateObjective

STRATEGIES = {cls.name: cls for cls in (RandomSearch, RegularisedEvolution, SurrogateEvolution,
                                         RejectionFilter, SurrogateObjective)}


def list_strategies() -> list[str]:
    return sorted(STRATEGIES)


def create_strategy(name: str, **kwargs) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(list_strategies())}")
    return STRATEGIES[name](**kwargs)


__all__ = ["Member", "Proposal", "Strategy", "STRATEGIES", "list_strategies", "create_strategy"]
