"""The surrogate side of a search, as the strategies see it: ``encode``, ``fit``, ``predict``.

``none`` (no surrogate) and ``random`` (the paper's RE baseline: uniform random scores, so 5 of
20 proposals are trained at random) live here; every other name is a predictor of the
``surrogates`` package applied to an encoding (``FeatureSurrogate``). ``state_dict``/``load_state_dict`` hold what a resumed run
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


class FeatureSurrogate(Surrogate):
    """A predictor over an encoder's features (e.g. rf on graf_zcp): the paper's surrogates.

    Targets are the raw validation accuracies, as in the paper's online surrogates (a transfer
    predictor normalises per source itself). The encoder caches rows by architecture string, so
    refits only encode new candidates.
    """

    needs_fit = True

    def __init__(self, encoder, predictor, name: str, seed: int = 0):
        super().__init__(seed)
        self.encoder, self.predictor, self.name = encoder, predictor, name

    def encode(self, archs):
        return self.encoder.encode_frame(list(archs))

    def fit(self, features, targets):
        self.predictor.fit(features, np.asarray(targets, dtype=float))

    def predict(self, features):
        return np.asarray(self.predictor.predict(features), dtype=float)


SURROGATES = {"none": NoSurrogate, "random": RandomSurrogate}


def list_surrogates() -> list[str]:
    """``none``, ``random`` and every registered predictor (used on an encoding)."""
    from surrogates.predictors import list_predictors

    return sorted(set(SURROGATES) | set(list_predictors()))
