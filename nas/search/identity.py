"""What makes two searches "the same experiment", and the seeds derived from it.

The run directory is a function of the identity (``conf/search.yaml``), so rerunning a command
resumes it; a resumed run must have the same experiment config, except ``search.budget``, which
may grow to extend a finished search.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

EXPERIMENT_KEYS = ("dataset", "space", "strategy", "surrogate", "encoding", "trainer", "seed")
FIRST_GENERATION_KEYS = ("dataset", "space", "trainer", "seed")


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any JSON-able parts (stable across processes and machines)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


# Surrogate settings a search never reads (train.py task=surrogate's; surrogates.fine_tuning.OFFLINE_KEYS):
# not part of a search's identity, so setting them changes no run.
NOT_SEARCH_KEYS = ("select_on_eval", "holdout", "offline_epochs", "offline_batch_size", "standardize")


def experiment_config(cfg: DictConfig) -> dict[str, Any]:
    config = {key: _plain(cfg.get(key)) for key in EXPERIMENT_KEYS}
    if isinstance(config.get("surrogate"), dict):
        config["surrogate"] = {k: v for k, v in config["surrogate"].items() if k not in NOT_SEARCH_KEYS}
    return config


def first_generation_key(cfg: DictConfig) -> dict[str, Any]:
    """Runs that agree on these share their trained initial population."""
    key = {k: _plain(cfg.get(k)) for k in FIRST_GENERATION_KEYS}
    key["population_size"] = cfg.strategy.get("population_size")
    key["seeds"] = cfg.strategy.get("seeds")
    return key


def config_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


# Keys added after runs were recorded, with the value that reproduces what those runs did. A
# saved experiment without one of them gets it before comparing, so the refusal names the value
# that resumes the old run exactly (e.g. ``trainer.nan_policy=fail``).
LEGACY_VALUES = {("trainer", "nan_policy"): "fail", ("encoding", "fisher_mode"): "ours",
                 ("trainer", "forward_time"): "measured", ("trainer", "tf32"): None,
                 ("encoding", "device"): "auto"}


def with_legacy_values(saved: dict[str, Any]) -> dict[str, Any]:
    saved = {k: dict(v) if isinstance(v, dict) else v for k, v in saved.items()}
    for (group, key), value in LEGACY_VALUES.items():
        node = saved.get(group)
        if isinstance(node, dict) and key not in node:
            if group != "encoding" or node.get("name") in ("zcp", "graf_zcp"):
                node[key] = value
    return saved


def diff_configs(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (added and removed keys included)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += diff_configs(old.get(key, "<missing>"), new.get(key, "<missing>"), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node
