"""Up-front checks of the command-line values the entry points trust: seeds and the search budget.

Each check runs before anything is built, trained or written, and raises :class:`InputError` with
a one-line message naming the key, the value given, the accepted range and an example; the entry
points print it as ``search.py: error: ...`` / ``train.py: error: ...`` and exit 1.

``arch=@file`` (train.py) is read here too: the file must be UTF-8 text.

Whole numbers only: ``seed=1.0`` is refused as well (it would name the run dir ``seed=1.0`` and
never resume ``seed=1``), as are booleans. A string of digits (``seed='7'``, or an
``${oc.env:...}`` interpolation) is accepted as the number it spells.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SEED_MAX = 2**32 - 1  # NumPy's seed range: 0 .. 2**32-1
_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_SHOW = 40  # characters of a bad value echoed back


class InputError(ValueError):
    """A command-line value that cannot be used; the message says which one and what to pass."""


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def as_int(value: Any, key: str, hint: str) -> int:
    """``value`` as an int, or :class:`InputError` ``"<key>=<value> is not a whole number; <hint>"``."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{key}={_show(value)} is not a whole number; {hint}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT.match(value):
        return int(value)
    raise InputError(f"{key}={_show(value)} is not a whole number; {hint}")


def check_seed(value: Any, key: str = "seed") -> int:
    """A seed in 0 .. 2**32-1 (what NumPy, torch and Python's random all accept)."""
    hint = f"pass a whole number from 0 to {SEED_MAX} (2**32-1), e.g. {key}=0"
    seed = as_int(value, key, hint)
    if not 0 <= seed <= SEED_MAX:
        raise InputError(f"{key}={seed} is out of range; {hint}")
    return seed


def check_budget(value: Any, key: str = "search.budget") -> int:
    """The number of trained iterations of a search: a whole number, at least 1."""
    what = f"the number of candidates the search trains (e.g. {key}=300, the paper's)"
    budget = as_int(value, key, f"pass a whole number, at least 1: {what}")
    if budget < 1:
        raise InputError(f"{key}={budget} must be at least 1: it is {what}")
    return budget


def read_architecture_file(name: str | Path) -> str:
    """The architecture string in file ``name`` (``arch=@name``): UTF-8 text, surrounding
    whitespace stripped. Anything else (missing, a folder, binary, another encoding) raises
    :class:`InputError` saying what the file must hold."""
    path = Path(name).expanduser()
    what = ("it must be a text file holding one architecture string (long or short form, e.g. the "
            "\"arch\" field of an archive.jsonl line)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the architecture file {path}: {exc.strerror}; {what}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(f"the architecture file {path} is a binary file (a NUL byte at offset {nul}); {what}")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise InputError(f"the architecture file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                         f"at offset {exc.start}); {what}") from None

