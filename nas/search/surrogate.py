"""The surrogate side of a search, as the strategies see it: ``encode``, ``fit``, ``predict``.

Every surrogate but ``none`` (no surrogate) is a predictor of the ``surrogates`` package's one
registry, applied to an encoding (``FeatureSurrogate``). ``random`` (the paper's RE baseline:
uniform random scores, so 5 of 20 proposals are trained at random) is the ``random`` predictor,
which needs no encoding (``RandomSurrogate``). ``state_dict``/``load_state_dict`` hold what a
resumed run needs: an RNG state, or the archive indices of the last fit so the model can be
refitted. A language model (``LanguageModelSurrogate``) reads the architecture strings and keeps
its fine-tuned weights in the run dir instead: refitting it would not give them back.
"""
from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas.search.errors import SearchError

log = logging.getLogger(__name__)


class Surrogate:
    """Interface. ``predict`` scores a batch; higher means a better predicted accuracy."""

    name = "base"
    needs_fit = True
    # True when predictions ignore the architecture (the random baseline): the strategy may then
    # breed a scored candidate only when it is about to be trained (same distribution, less work).
    input_independent = False
    # True when ``load_state_dict`` restores the fitted model itself (the strategy must not refit).
    restores_fit = False

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


class LanguageModelSurrogate(Surrogate):
    """``surrogate=lm``/``bert`` in a search: a ``LanguageModelPredictor`` over the long strings.

    Its weights carry over between refits, so a resumed run must continue from the very weights
    the run had, not refit from the pretrained ones. After each fit ``k`` the predictor is saved
    (atomically) to ``<run_dir>/surrogate/fit-<k>/``; ``state_dict`` (in ``checkpoint.json``) names
    it and ``load_state_dict`` loads exactly that one, with no refit. A kill between the save and
    the checkpoint resumes from fit ``k-1``, whose redone candidate fits ``k`` again from the same
    weights and seed (the same result on a CPU). The current and the previous fit are kept (a
    checkpoint never lags more than one fit behind: a tell refits at most once), older ``fit-<j>``
    folders are removed; nothing else in ``surrogate/`` is touched.
    """

    restores_fit = True
    SUBDIR = "surrogate"

    def __init__(self, predictor, name: str, seed: int = 0, run_dir: str | Path | None = None):
        super().__init__(seed)
        self.predictor, self.name = predictor, name
        self.folder = None if run_dir is None else Path(run_dir) / self.SUBDIR
        self.saved_fit: int | None = None  # the fit whose weights are in ``folder``

    def encode(self, archs):
        return [arch.long_string for arch in archs]

    def fit(self, features, targets):
        self.predictor.fit(list(features), np.asarray(targets, dtype=float))
        if self.folder is not None:
            k = self.predictor.fit_count
            self.predictor.save(self._fit_dir(k))
            self.saved_fit = k
            self._remove_old_fits(keep={k, k - 1})

    def predict(self, features):
        return np.asarray(self.predictor.predict(list(features)), dtype=float)

    def state_dict(self):
        return {"saved_fit": self.saved_fit, "predictor": self.predictor.state_dict()}

    def load_state_dict(self, state):
        saved = state.get("saved_fit")
        if saved is not None:
            path = self._fit_dir(saved)
            try:
                self.predictor = type(self.predictor).load(path)
            except (OSError, ValueError) as err:
                raise SearchError(
                    f"the checkpoint names the fine-tuned surrogate {path}, which cannot be loaded ({err}); "
                    "restore that folder, or rerun with search.restart=true to start over") from None
            log.info("%s: loaded the fine-tuned weights of fit %d from %s (no refit)", self.name, saved, path)
        self.predictor.load_state_dict(state.get("predictor", {}))
        self.saved_fit = saved
        if self.folder is not None and self.folder.is_dir():  # what a kill during a save left
            for debris in self.folder.glob(".fit-*"):
                if re.fullmatch(r"\.fit-\d+\.(tmp|old)-.+", debris.name) and debris.is_dir():
                    shutil.rmtree(debris, ignore_errors=True)

    def _fit_dir(self, k: int) -> Path:
        if self.folder is None:
            raise SearchError(f"{self.name}: no run dir to keep the fine-tuned weights in")
        return self.folder / f"fit-{k}"

    def _remove_old_fits(self, keep: set[int]) -> None:
        for path in self.folder.glob("fit-*"):
            match = re.fullmatch(r"fit-(\d+)", path.name)
            if match and int(match.group(1)) not in keep and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


# The surrogates the search builds from their own config, without an encoding.
SURROGATES = {"none": NoSurrogate, "random": RandomSurrogate}


def list_surrogates() -> list[str]:
    """``none``, ``random`` and every registered predictor (used on an encoding)."""
    from surrogates.predictors import list_predictors

    return sorted(set(SURROGATES) | set(list_predictors()))
