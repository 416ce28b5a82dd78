"""One candidate to train, and the evaluation that every backend runs for it.

A task carries only what a fresh process needs besides the search's config: the candidate's
archive index, its architecture (the long string) and its seed, derived from (run seed, index)
by the runner. The result is a plain dict (JSON and pickle safe), whichever process made it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# The config groups a worker rebuilds the evaluation from (resolved to plain containers).
CONTEXT_GROUPS = ("dataset", "space", "trainer")


@dataclass(frozen=True)
class Task:
    index: int
    arch: str  # the long architecture string
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_architecture(arch: Any, datamodule: Any, trainer_cfg: Any, space: Any, seed: int) -> dict[str, Any]:
    """Train and score one candidate (``nas.training.evaluate_candidate``: never raises)."""
    from nas.training import evaluate_candidate  # heavy import, only when training

    result = evaluate_candidate(arch, datamodule, trainer_cfg, space=space, seed=seed, data_seed=seed)
    return {"val_acc": result.val_acc, "status": result.status, "reason": result.reason,
            "seconds": result.seconds}


def failed_result(status: str, reason: str) -> dict[str, Any]:
    """The result of a candidate whose evaluation ended without one (its process died)."""
    return {"val_acc": None, "status": status, "reason": reason, "seconds": 0.0}


class EvaluationContext:
    """Space, data and trainer settings of a worker, kept for every candidate it trains: the
    search's own (a forked worker shares them) or built once from its config groups."""

    def __init__(self, space: Any, datamodule: Any, trainer_cfg: Any):
        self.space, self.datamodule, self.trainer_cfg = space, datamodule, trainer_cfg

    @classmethod
    def build(cls, nodes: dict[str, Any]) -> EvaluationContext:
        """Build it from ``context_nodes`` (a fresh process: spawn, a submitit job)."""
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        space = instantiate(OmegaConf.create(nodes["space"]))
        datamodule = instantiate(OmegaConf.create(nodes["dataset"]))
        datamodule.setup()
        return cls(space, datamodule, instantiate(OmegaConf.create(nodes["trainer"])))

    def evaluate(self, task: Task) -> dict[str, Any]:
        arch = self.space.parse(task.arch)
        return evaluate_architecture(arch, self.datamodule, self.trainer_cfg, self.space, task.seed)


def context_nodes(cfg: Any) -> dict[str, Any]:
    """The search config's groups a worker needs, resolved here (interpolations such as the data
    directory may need the main process's Hydra state)."""
    from omegaconf import OmegaConf

    return {group: OmegaConf.to_container(cfg[group], resolve=True) for group in CONTEXT_GROUPS}
