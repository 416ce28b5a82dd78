"""The interface every architecture encoder follows (DESIGN.md §6).

An encoder turns architectures into a fixed-width float64 feature matrix with named columns.
Subclasses set ``name`` and ``columns`` and implement ``encode_one``; the base class adds the
cache, the failure policy and the DataFrame view, so every encoder behaves the same way:

* ``encode(archs)`` returns an ``(n, len(columns))`` float64 array, row ``i`` for ``archs[i]``.
* Rows are cached by ``arch.long_string`` in a plain dict. The cache belongs to the encoder
  *instance*: two instances never share entries, and an encoder whose output depends on
  something besides the architecture (data, seed, device) must be re-created, or have
  ``clear_cache()`` called, when that changes.
* A failure never raises: the architecture gets a row of NaN, ``self.failures`` counts the
  exception type name, and the failure is not cached (it may be transient, e.g. out of memory),
  so asking again retries and counts again. ``KeyboardInterrupt`` and ``SystemExit`` still
  propagate.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class Encoder:
    """Base class: ``name``, ``columns`` (feature names in order) and ``encode_one``."""

    name: str = ""
    columns: list[str] = []

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}
        self.failures: Counter = Counter()

    # ------------------------------------------------------------------ for subclasses
    def encode_one(self, arch) -> np.ndarray:
        """The uncached features of one architecture, ``len(columns)`` values."""
        raise NotImplementedError

    # ------------------------------------------------------------------ public
    @property
    def width(self) -> int:
        return len(self.columns)

    def encode(self, archs: Sequence) -> np.ndarray:
        out = np.empty((len(archs), self.width), dtype=np.float64)
        for i, arch in enumerate(archs):
            out[i] = self.encode_cached(arch)
        return out

    def encode_frame(self, archs: Sequence) -> pd.DataFrame:
        return pd.DataFrame(self.encode(archs), columns=list(self.columns))

    def encode_cached(self, arch) -> np.ndarray:
        """One row: the cached (read-only) array on a hit, else computed and stored.

        A failure returns a fresh row of NaN and is counted in ``failures``.
        """
        try:
            key = arch.long_string
        except Exception as err:  # not an architecture at all
            return self._failed(err, arch)
        row = self._cache.get(key)
        if row is not None:
            return row
        try:
            row = np.asarray(self.encode_one(arch), dtype=np.float64)
            if row.shape != (self.width,):
                raise ValueError(f"{type(self).__name__}.encode_one returned shape {row.shape}, "
                                 f"expected ({self.width},)")
        except Exception as err:
            return self._failed(err, arch)
        row.flags.writeable = False
        self._cache[key] = row
        return row

    def clear_cache(self) -> None:
        self._cache.clear()

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, width={self.width})"

    # ------------------------------------------------------------------ internals
    def _failed(self, err: Exception, arch) -> np.ndarray:
        self.failures[type(err).__name__] += 1
        log.debug("%s failed on %r: %s: %s", self.name, arch, type(err).__name__, err)
        return np.full(self.width, np.nan)
