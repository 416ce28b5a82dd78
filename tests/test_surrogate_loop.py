"""The paper's surrogate loop itself (seed_system.md §3.3), driven through ask/tell without training:
which children are scored, which are trained, and when the surrogate is refitted."""
import hashlib
import random

import numpy as np
import pytest

from nas.search.strategies.surrogate_evolution import SurrogateEvolution
from nas.search.strategies.surrogate_objective import SurrogateObjective
from nas.search.surrogate import Surrogate
from nas.space import EinSpace


def _unit(text: str, salt: str) -> float:
    return int.from_bytes(hashlib.sha256((salt + text).encode()).digest()[:4], "little") / 2**32


class RecordingSurrogate(Surrogate):
    """Deterministic scores from the architecture string; remembers every batch and fit."""

    name = "recording"

    def __init__(self, seed=0, scale=1.0):
        super().__init__(seed)
        self.batches, self.fit_sizes, self.scale = [], [], scale
        self.encoded: dict[str, object] = {}

    def encode(self, archs):
        self.encoded.update((a.long_string, a) for a in archs)
        return [a.long_string for a in archs]

    def fit(self, features, targets):
        self.fit_sizes.append(len(targets))

    def predict(self, features):
        self.batches.append(list(features))
        return np.array([self.scale * _unit(f, "score") for f in features])


def rejects(arch) -> bool:
    return _unit(arch.long_string, "precheck") < 0.25


def precheck(arch):
    return ("too_large", "test rule: a quarter of the architectures") if rejects(arch) else None


def accuracy(arch) -> float | None:
    u = _unit(arch.long_string, "accuracy")
    return None if u < 0.15 else 0.2 + 0.7 * u  # about 15% fail to train


def drive(strategy, budget):
    """ask/tell until the budget, as the runner does; returns the proposals in order with accuracies."""
    asked, index = [], 0
    while strategy.iteration < budget:
        proposal = strategy.ask()
        if proposal is None:
            break
        acc = accuracy(proposal.arch)
        asked.append((proposal, acc))
        strategy.tell(proposal, index, acc)
        index += 1
    return asked


@pytest.fixture(scope="module")
def paper_loop():
    space = EinSpace(input_shape=(3, 8, 8), p_computation=0.9)  # small trees: fast
    surrogate = RecordingSurrogate()
    strategy = SurrogateEvolution(space, random.Random(0), surrogate=surrogate, budget=300,
                                  population_size=100, n_sampled=20, n_chosen=5, refit_every=20)
    strategy.precheck = precheck
    return strategy, surrogate, drive(strategy, 300)


def test_refits_at_the_original_iterations(paper_loop):
    strategy, surrogate, _ = paper_loop
    # Once after the initial population, then after the candidate with 0-based index i is
    # trained for i = 100, 120, ..., 280 (i % 20 == 0): 101, 121, ..., 281 trained candidates.
    assert surrogate.fit_sizes == [100] + list(range(101, 300, 20))
    assert strategy.iteration == 300


def test_trained_are_the_top_predictions_of_twenty_prechecked_children(paper_loop):
    strategy, surrogate, asked = paper_loop
    batches = [b for b in surrogate.batches if len(b) == 20]
    assert len(batches) == len(surrogate.batches) >= 35  # every prediction call scored 20 children
    assert strategy.precheck_failures["too_large"] > 0  # the pre-check did reject children
    assert not any(rejects(surrogate.encoded[text]) for batch in batches for text in batch)

    chosen = [(p, acc) for p, acc in asked if p.origin == "surrogate"]
    position = 0
    for batch in batches:
        scores = [_unit(text, "score") for text in batch]
        ranked = [batch[i] for i in sorted(range(20), key=lambda i: -scores[i])]
        successes, walked = 0, 0
        while successes < 5 and position < len(chosen):
            proposal, acc = chosen[position]
            assert proposal.arch.long_string == ranked[walked]  # best predicted first
            assert proposal.prediction == pytest.approx(_unit(ranked[walked], "score"))
            successes += acc is not None
            walked += 1
            position += 1
        assert successes == 5 or position == len(chosen)
    assert position == len(chosen)


def test_surrogate_objective_compares_predictions_with_predictions():
    """With scores on another scale than accuracies (e.g. tr_rf's normalised targets), the
    running best starts from the population's best *prediction*, not its best accuracy."""
    space = EinSpace(input_shape=(3, 8, 8), p_computation=0.9)  # small trees: fast
    surrogate = RecordingSurrogate(scale=0.01)  # predictions far below every true accuracy
    strategy = SurrogateObjective(space, random.Random(1), surrogate=surrogate, budget=40,
                                  population_size=10, objective_steps=300, min_improvement=0.0)
    drive(strategy, 10)
    queued = strategy.run_predicted_evolution()
    population_scores = [0.01 * _unit(m.arch.long_string, "score") for m in strategy.population]
    assert queued  # with mixed scales, no prediction (< 0.01) would ever beat an accuracy (>= 0.2)
    assert queued[0].prediction > max(population_scores)
    assert [p.prediction for p in queued] == sorted(p.prediction for p in queued)
