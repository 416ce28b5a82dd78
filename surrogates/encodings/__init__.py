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


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "graf": _graf,  # 385 GRAF features (seed_system.md §6.3)
    "zcp": lambda **kw: __import__("surrogates.encodings.zcp", fromlist=["ZCPEncoder"]).ZCPEncoder(**kw),
    # "zcp": the 7 zero-cost proxies (surrogates/encodings/zcp.py)
    # "graf_zcp": GRAF then ZCP, 392 columns
    # "string": the long-form architecture string
}


def register_encoder(name: str, factory: Callable[..., Encoder]) -> None:
    """Add (or replace) a named encoder factory."""
    ENCODERS[name] = factory


def list_encoders() -> list[str]:
    return sorted(ENCODERS)


def create_encoder(name: str, **kwargs) -> Encoder:
    try:
        factory = ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; available: {list_encoders()}") from None
    return factory(**kwargs)


__all__ = ["ENCODERS", "Encoder", "create_encoder", "list_encoders", "register_encoder"]
