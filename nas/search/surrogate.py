"""The surrogate side of a search, as the strategies see it: ``encode``, ``fit``, ``predict``.

The surrogates package fills this interface with real predictors; the search package provides
``none`` (no surrogate) and ``random`` (the paper's RE baseline: uniform random scores, so 5 of
20 proposals are trained at random). ``state_dict``/``load_state_dict`` hold what a resumed run
needs: an RNG state, or the archive indices of the last fit so the model can be refitted.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Surrogate:
    """Interface. ``predict`` scores a batch; higher means a better predicted accuracy."""

    name = "base"
    needs_fit = True
    # True when predictions ignore the architecture (the random baseline): the strategy may then
    # breed a scored candidate only when it is about to be trained (same distribution, less work).
    input_independent = False

    def __init__(self, seed: int = 0):
        self.seed = seed

    def encode(self, archs: Sequence) -> list:
        """Features per architecture (cached by long string in real encoders)."""
        return list(archs)

    def fit(self, features: list, targets: Sequence[float]) -> None:
        raise NotImplementedError

    def predict(self, features: list) -> np.ndarray:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict`` (a fitted model is refitted by the strategy)."""


class NoSurrogate(Surrogate):
    """For strategies that need none; using it with a surrogate strategy is a config error."""

    name = "none"
    needs_fit = False

    def fit(self, features, targets):
        raise RuntimeError("surrogate=none cannot be fitted; choose a surrogate (e.g. surrogate=random)")

    def predict(self, features):
        raise RuntimeError("surrogate=none cannot predict; choose a surrogate (e.g. surrogate=random)")


class RandomSurrogate(Surrogate):
    """Uniform [0, 1) predictions from a seeded generator; no encoding work at all."""

    name = "random"
    needs_fit = False
    input_independent = True

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self._rng = np.random.default_rng(seed)

    def encode(self, archs):
        return [None] * len(archs)

    def fit(self, features, targets):
        return None

    def predict(self, features):
        return self._rng.random(len(features))

    def state_dict(self):
        return {"bit_generator": self._rng.bit_generator.state}

    def load_state_dict(self, state):
        if state:
            self._rng.bit_generator.state = state["bit_generator"]


SURROGATES = {"none": NoSurrogate, "random": RandomSurrogate}


def list_surrogates() -> list[str]:
    return sorted(SURROGATES)


def create_surrogate(name: str, **kwargs) -> Surrogate:
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; available: {', '.join(list_surrogates())}")
    return SURROGATES[name](**kwargs)
