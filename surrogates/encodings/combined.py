"""Encoders built from others: ``graf_zcp`` (the paper's RF input: 385 GRAF then the 7 proxies,
392 named columns, seed_system.md §6.1) and ``string`` (the long form, for language models)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from surrogates.encodings.base import Encoder


class ConcatEncoder(Encoder):
    """Columns of each part side by side, in order; each part keeps its own cache and failures."""

    def __init__(self, parts: Sequence[Encoder], name: str):
        super().__init__()
        self.parts, self.name = list(parts), name
        self.columns = [column for part in self.parts for column in part.columns]

    def encode_one(self, arch) -> np.ndarray:
        return np.concatenate([part.encode_cached(arch) for part in self.parts])


class StringEncoder(Encoder):
    """The long-form string (seed_system.md §6.4). ``encode`` returns a list of strings, not a
    float matrix: it feeds tokenisers, not tabular models."""

    name = "string"
    columns = ["arch"]

    def encode(self, archs: Sequence) -> list[str]:
        return [arch.long_string for arch in archs]

    def encode_one(self, arch):
        raise TypeError("the string encoding is not numeric; use encode()")
