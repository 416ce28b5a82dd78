"""The surrogate side of a search, as the strategies see it: ``encode``, ``fit``, ``predict``.

Every surrogate but ``none`` (no surrogate) is a predictor of the ``surrogates`` package's one
registry, applied to an encoding (``FeatureSurrogate``). ``random`` (the paper's RE baseline:
uniform random scores, so 5 of 20 proposals are trained at random) is the ``random`` predictor,
which needs no encoding (``RandomSurrogate``). ``state_dict``/``load_state_dict`` hold what a
resumed run needs: an RNG state, or the archive indices of the last fit so the model can be
refitted.
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


class FeatureSurrogate(Surrogate):
    """A registered predictor over an encoder's features (e.g. rf on graf_zcp): the paper's surrogates.

    Targets are the raw validation accuracies, as in the paper's online surrogates (a transfer
    predictor normalises per source itself). The encoder caches rows by architecture string, so
    refits only encode new candidates. A predictor that ignores its input (``random``) runs with
    ``encoder=None``: every candidate is then a row without columns, and no encoding work is done.
    The predictor's ``state_dict`` (an RNG state) is the surrogate's; a fitted model is refitted.
    """

    def __init__(self, encoder, predictor, name: str, seed: int = 0):
        super().__init__(seed)
        if encoder is None and not predictor.input_independent:
            raise ValueError(f"surrogate {name!r} scores features: it needs an encoder")
        self.encoder, self.predictor, self.name = encoder, predictor, name
        self.needs_fit, self.input_independent = predictor.needs_fit, predictor.input_independent

    def encode(self, archs):
        if self.encoder is None:
            return np.zeros((len(archs), 0))
        return self.encoder.encode_frame(list(archs))

    def fit(self, features, targets):
        self.predictor.fit(features, np.asarray(targets, dtype=float))

    def predict(self, features):
        return np.asarray(self.predictor.predict(features), dtype=float)

    def state_dict(self):
        return self.predictor.state_dict()

    def load_state_dict(self, state):
        self.predictor.load_state_dict(state)


class RandomSurrogate(FeatureSurrogate):
    """``surrogate=random``, the paper's RE baseline: the registered ``random`` predictor
    (``surrogates.predictors.RandomPredictor``, uniform [0, 1) scores) with no encoder."""

    def __init__(self, seed: int = 0):
        from surrogates.predictors import create_predictor  # heavy import, only when used

        super().__init__(None, create_predictor("random", seed=seed), "random", seed)


# The surrogates the search builds from their own config, without an encoding.
SURROGATES = {"none": NoSurrogate, "random": RandomSurrogate}


def list_surrogates() -> list[str]:
    """``none``, ``random`` and every registered predictor (used on an encoding)."""
    from surrogates.predictors import list_predictors

    return sorted(set(SURROGATES) | set(list_predictors()))
