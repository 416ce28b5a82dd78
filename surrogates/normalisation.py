"""Target normalisation: one named policy, applied per source (per file, per search run).

Why a policy and not scattered code: the original mixes three conventions (seed_system §10.15):
the online surrogates fit raw accuracy, ``tr_rf`` min-max normalises each transfer file and the
current run, and the language-model leave-one-out fits per-dataset ECDF targets. Datasets differ
in how hard they are (a 0.6 on one is excellent, on another poor), so pooling runs only makes sense
once each run's accuracies are put on a common scale, and that scale is what a policy names.

Policies (``POLICIES``):

- ``raw``: the accuracies unchanged.
- ``minmax``: ``(y - min) / (max - min)`` within the source, in [0, 1]. A constant source maps to
  0.5 (neither best nor worst; it carries no ranking information).
- ``ecdf``: the mid-rank percentile within the source, ``average rank / n`` in (0, 1], which is
  pandas' ``rank(pct=True)`` (the original's ``percentile``). Ties share their mean rank.

``percentile`` is accepted as an alias of ``ecdf`` and ``None``/``"none"`` of ``raw``. Non-finite
targets stay NaN and take no part in the statistics of their source.

``normalise(y, policy)`` treats ``y`` as one source; ``normalise_groups(y, groups, policy)`` applies
it within each group label. ``TargetPolicy`` is the same thing as an object that can also be
*fitted* on one source and then map new values onto that source's scale (``transform``): e.g. the
held-out accuracies of a run mapped onto the scale of its training rows.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from surrogates.metrics import rankdata_average

__all__ = ["POLICIES", "canonical_policy", "normalise", "normalise_groups", "TargetPolicy"]

POLICIES = ("raw", "minmax", "ecdf")
_ALIASES = {"none": "raw", "percentile": "ecdf"}


def canonical_policy(policy: str | None) -> str:
    """The canonical name of a policy (aliases resolved); unknown names raise ``ValueError``."""
    if policy is None:
        return "raw"
    name = str(policy).lower()
    name = _ALIASES.get(name, name)
    if name not in POLICIES:
        raise ValueError(
            f"unknown target normalisation policy {policy!r}; choose one of {', '.join(POLICIES)}"
            " (aliases: percentile = ecdf, none = raw)"
        )
    return name


def _as_float(y: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(y, dtype=float).ravel().copy()


@dataclass
class TargetPolicy:
    """A policy that can be fitted on one source and applied to values of that source.

    ``fit_transform(y)`` (also ``__call__``) is ``normalise(y, policy)``; ``transform`` after ``fit``
    maps any values onto the fitted source's scale (min-max: the fitted min and max, values outside
    fall outside [0, 1]; ECDF: ``(#{ref < v} + #{ref <= v} + 1) / 2n``, which equals the in-sample
    mid-rank percentile for values of the reference). ``per_group`` normalises within groups.
    """

    policy: str = "raw"
    _lo: float = field(default=np.nan, init=False, repr=False)
    _hi: float = field(default=np.nan, init=False, repr=False)
    _ref: np.ndarray | None = field(default=None, init=False, repr=False)
    _fitted: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.policy = canonical_policy(self.policy)

    def fit(self, y: Sequence[float] | np.ndarray) -> TargetPolicy:
        values = _as_float(y)
        finite = values[np.isfinite(values)]
        if self.policy == "minmax":
            self._lo, self._hi = (float(finite.min()), float(finite.max())) if finite.size else (np.nan, np.nan)
        elif self.policy == "ecdf":
            self._ref = np.sort(finite)
        self._fitted = True
        return self

    def transform(self, y: Sequence[float] | np.ndarray) -> np.ndarray:
        if not self._fitted:
            raise RuntimeError("TargetPolicy.transform called before fit")
        values = _as_float(y)
        out = np.full_like(values, np.nan)
        ok = np.isfinite(values)
        if self.policy == "raw":
            out[ok] = values[ok]
        elif self.policy == "minmax":
            span = self._hi - self._lo
            if np.isfinite(span):
                out[ok] = 0.5 if span == 0 else (values[ok] - self._lo) / span
        else:  # ecdf
            ref = self._ref
            if ref is not None and ref.size:
                below = np.searchsorted(ref, values[ok], side="left")
                at_or_below = np.searchsorted(ref, values[ok], side="right")
                out[ok] = (below + at_or_below + 1) / (2.0 * ref.size)
        return out

    def fit_transform(self, y: Sequence[float] | np.ndarray) -> np.ndarray:
        values = _as_float(y)
        if self.policy == "ecdf":
            # Exact average ranks (identical to fit + transform, without the searchsorted pass).
            self.fit(values)
            out = np.full_like(values, np.nan)
            ok = np.isfinite(values)
            if ok.any():
                out[ok] = rankdata_average(values[ok]) / ok.sum()
            return out
        return self.fit(values).transform(values)

    __call__ = fit_transform

    def per_group(self, y: Sequence[float] | np.ndarray, groups: Sequence[Hashable]) -> np.ndarray:
        """Normalise within each group (file, run): a fresh fit per group, order preserved."""
        values = _as_float(y)
        labels = np.asarray(groups, dtype=object).ravel()
        if labels.shape != values.shape:
            raise ValueError(f"groups has {labels.size} labels for {values.size} targets")
        out = np.empty_like(values)
        for label in dict.fromkeys(labels.tolist()):
            rows = labels == label
            out[rows] = TargetPolicy(self.policy).fit_transform(values[rows])
        return out


def normalise(y: Sequence[float] | np.ndarray, policy: str | None = "raw") -> np.ndarray:
    """``y`` (one source) on the policy's scale, as a new float array."""
    return TargetPolicy(policy).fit_transform(y)


def normalise_groups(
    y: Sequence[float] | np.ndarray, groups: Sequence[Hashable], policy: str | None = "raw"
) -> np.ndarray:
    """``normalise`` applied within each group label (e.g. the file each row came from)."""
    return TargetPolicy(policy).per_group(y, groups)
