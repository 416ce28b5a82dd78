"""Atomic JSON checkpoints (no pickle) and the RNG states they carry.

Python's ``random`` state, NumPy's legacy global state and torch's CPU (and CUDA) generator
states are all turned into JSON-safe lists/strings and restored exactly.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.logging import atomic_write_text

VERSION = 1


class CheckpointError(RuntimeError):
    pass


def python_rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_python_rng_state(rng: random.Random, state: list) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


def _tensor_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _b64_tensor(text: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())


def global_rng_states() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
              "torch": _tensor_b64(torch.get_rng_state()),
              "python": python_rng_state(random)}  # the module-level generator
    if torch.cuda.is_available():
        states["cuda"] = [_tensor_b64(s) for s in torch.cuda.get_rng_state_all()]
    return states


def set_global_rng_states(states: dict[str, Any]) -> None:
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(_b64_tensor(states["torch"]))
    set_python_rng_state(random, states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_b64_tensor(s) for s in states["cuda"]])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    body = json.dumps({"version": VERSION, **state}, separators=(",", ":"))
    digest = hashlib.sha256(body.encode()).hexdigest()
    atomic_write_text(path, json.dumps({"sha256": digest, "body": body}))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    """The saved state, None when there is no checkpoint; a damaged one is a clear error."""
    path = Path(path)
    if not path.exists():
        return None
    hint = (f"the checkpoint {path} is corrupted; move it away (e.g. to {path.name}.damaged) and rerun to "
            "rebuild the state from the archive, or rerun with search.restart=true to start this run over")
    try:
        wrapper = json.loads(path.read_text(encoding="utf-8"))
        body = wrapper["body"]
        if hashlib.sha256(body.encode()).hexdigest() != wrapper["sha256"]:
            raise CheckpointError(hint + " (checksum mismatch)")
        state = json.loads(body)
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{hint} ({type(err).__name__})") from None
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}, expected {VERSION}")
    return state
