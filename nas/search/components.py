"""Build what a search runs with from its config: space, data, trainer settings, surrogate,
strategy (with its random generator) and archive. Config errors become ``SearchError``s."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nas.hydra_utils import group_factory
from nas.search.archive import Archive
from nas.search.errors import SearchError
from nas.search.identity import derive_seed
from nas.search.strategies import STRATEGIES
from nas.search.strategies.base import Strategy
from nas.search.surrogate import (
    SURROGATES,
    FeatureSurrogate,
    LanguageModelSurrogate,
    list_surrogates,
)
from surrogates.encodings import create_encoder
from surrogates.fine_tuning import NOT_MODEL_KEYS, language_model

ARCHIVE = "archive.jsonl"
# Surrogate config keys for the search, not the model: its start (lm, bert) and its refit cadence
# (read by conf/strategy/surrogate_evolution.yaml).


@dataclass
class Components:
    space: Any
    datamodule: Any
    trainer_cfg: Any
    surrogate: Any
    rng: random.Random
    strategy: Strategy
    archive: Archive


def check_names(cfg: DictConfig) -> None:
    """Unknown strategy or surrogate names fail before anything is built."""
    for group, known in (("strategy", STRATEGIES), ("surrogate", list_surrogates())):
        name = cfg[group].get("name")
        if name not in known:
            raise SearchError(f"unknown {group} {name!r}; available: {', '.join(sorted(known))}")


def build_components(cfg: DictConfig, run_dir: Path, seed: int, budget: int) -> Components:
    space = _from_config("space", lambda: instantiate(cfg.space))
    datamodule = instantiate(cfg.dataset)
    datamodule.setup()
    trainer_cfg = _from_config("trainer", lambda: instantiate(cfg.trainer))
    surrogate = build_surrogate(cfg, space, datamodule, derive_seed(seed, "surrogate"), run_dir)
    rng = random.Random(derive_seed(seed, "strategy"))
    strategy = _from_config("strategy", lambda: group_factory(cfg.strategy)(
        space=space, rng=rng, surrogate=surrogate, budget=budget))
    if strategy.uses_surrogate:  # bred children pass the training pre-checks before scoring
        strategy.precheck = _prechecker(space, datamodule, trainer_cfg, derive_seed(seed, "precheck"))
    return Components(space, datamodule, trainer_cfg, surrogate, rng, strategy, Archive(run_dir / ARCHIVE))


def _from_config(group: str, make):
    """Build one config group; a value of the wrong type or range (``strategy.population_size=abc``,
    ``trainer.max_epochs=0``) is a one-line ``SearchError`` naming the group, not a traceback."""
    from hydra.errors import InstantiationException

    try:
        return make()
    except ValueError as err:  # our constructors' own checks say what to do
        raise SearchError(str(err)) from None
    except (TypeError, InstantiationException) as err:
        cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ is not None else err
        text = (str(cause).splitlines() or [""])[0]
        raise SearchError(f"{group}: {type(cause).__name__}: {text} (check the {group}.* settings on the "
                          f"command line and in conf/{group}/)") from None


def build_surrogate(cfg: DictConfig, space: Any, datamodule: Any, seed: int, run_dir: Path | None = None):
    """``surrogate=none|random`` as they are; a language model (lm, bert) on the long strings; any
    other predictor on the configured encoding."""
    name = cfg.surrogate.name
    node = OmegaConf.to_container(cfg.surrogate, resolve=True)
    for key in NOT_MODEL_KEYS:  # the strategy's, ours and train.py task=surrogate's: not the model's
        node.pop(key, None)
    factory = group_factory(OmegaConf.create(node))
    if name in SURROGATES:
        return factory(seed=seed)
    encoding = cfg.encoding.name
    if getattr(getattr(factory, "func", factory), "input_kind", "features") == "strings":
        return _language_model(cfg, encoding, seed, run_dir)
    if encoding in ("none", "string"):
        raise SearchError(f"surrogate={name} needs a numeric encoding: add encoding=graf_zcp (the paper's), "
                          "encoding=graf or encoding=zcp")
    params = OmegaConf.to_container(cfg.encoding, resolve=True)
    params.pop("name")
    batch_size = int(params.pop("batch_size", 256))  # the proxies' batch (256 in the paper)
    context = {"space": space, "batch": datamodule.example_batch(batch_size),
               "num_classes": datamodule.num_classes, "seed": seed}
    encoder = create_encoder(encoding, context=context, **params)
    try:
        predictor = factory(seed=seed)
    except (ValueError, FileNotFoundError) as err:
        raise SearchError(f"surrogate={name}: {err}") from None
    return FeatureSurrogate(encoder, predictor, name, seed)


def _language_model(cfg: DictConfig, encoding: str, seed: int, run_dir: Path | None):
    """A language model reads the long architecture strings: ``encoding=string``, which its config
    selects (``conf/surrogate/lm.yaml``); a numeric encoding asked for explicitly is refused.
    ``surrogate.checkpoint=<dir>`` starts from fine-tuned weights instead of the pretrained ones
    (``surrogates.fine_tuning.language_model`` builds it, as for offline fine-tuning)."""
    name = cfg.surrogate.name
    if encoding != "string":
        raise SearchError(f"surrogate={name} reads the architecture strings, not encoding={encoding}: drop the "
                          "encoding override (surrogate=lm selects encoding=string) or set encoding=string")
    try:
        predictor = language_model(cfg.surrogate, seed)
    except (ValueError, FileNotFoundError) as err:
        text = str(err)
        raise SearchError(text if text.startswith("surrogate.") else f"surrogate={name}: {text}") from None
    return LanguageModelSurrogate(predictor, name, seed, run_dir)


def _prechecker(space: Any, datamodule: Any, trainer_cfg: Any, seed: int):
    """The training pre-checks (memory estimate, forward time) without training; the global RNG
    states are left as they were, so pre-checking changes nothing else in the run."""
    def precheck(arch) -> tuple[str, str] | None:
        from nas.training import precheck_candidate  # heavy import, only when needed

        failure = precheck_candidate(arch, datamodule, trainer_cfg, space=space, seed=seed)
        return None if failure is None else (failure.status, failure.reason)
    return precheck
