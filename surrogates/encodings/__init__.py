"""Architecture encoders and their registry.

``ENCODERS`` maps a name to a factory ``(**kwargs) -> Encoder``. Factories import their module
lazily, so listing or creating ``graf`` does not import torch-heavy encoders.

    >>> enc = create_encoder("graf")
    >>> X = enc.encode(archs)            # (n, 385) float64, cached per instance
    >>> frame = enc.encode_frame(archs)  # the same with the column names
"""
from __future__ import annotations

from collections.abc import Callable

from surrogates.encodings.base import Encoder


def _graf(**kwargs) -> Encoder:
    from surrogates.encodings.graf import GRAFEncoder

    return GRAFEncoder(**kwargs)


def _zcp(**kwargs) -> Encoder:
    from surrogates.encodings.zcp import ZCPEncoder

    return ZCPEncoder(**kwargs)


def _graf_zcp(legacy_output_id: bool = False, **zcp_kwargs) -> Encoder:
    from surrogates.encodings.combined import ConcatEncoder

    return ConcatEncoder([_graf(legacy_output_id=legacy_output_id), _zcp(**zcp_kwargs)], name="graf_zcp")


def _string() -> Encoder:
    from surrogates.encodings.combined import StringEncoder

    return StringEncoder()


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "graf": _graf,  # 385 GRAF features (seed_system.md §6.3)
    "zcp": _zcp,  # the 7 zero-cost proxies (+4 extra columns with extra=True), on ``device``
    "graf_zcp": _graf_zcp,  # GRAF then ZCP: 392 columns, the paper's RF input
    "string": _string,  # the long-form architecture string (language models)
}
# Encoders that need the run's context: the search space, one training batch and the classes.
NEEDS_DATA = {"zcp", "graf_zcp"}


def list_encoders() -> list[str]:
    return sorted(ENCODERS)


def create_encoder(name: str, context: dict | None = None, **kwargs) -> Encoder:
    """``context`` (space, batch, num_classes, seed, optionally device) is passed only to encoders
    that need data."""
    try:
        factory = ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; available: {list_encoders()}") from None
    if name in NEEDS_DATA:
        missing = {"space", "batch", "num_classes"} - set(context or {})
        if missing:
            raise ValueError(f"encoder {name!r} needs {sorted(missing)} (pass context=...)")
        kwargs = {**(context or {}), **kwargs}
    return factory(**kwargs)


__all__ = ["ENCODERS", "NEEDS_DATA", "Encoder", "create_encoder", "list_encoders"]
