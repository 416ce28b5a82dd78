"""Shared set-up for the search tests: tiny, fast configs composed with the Hydra Compose API."""
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir

CONF = str(Path(__file__).resolve().parents[1] / "conf")
# No wall-clock budget here (a time-budget rejection depends on the machine's load, so archives
# compared across runs would differ) and no forward limit (the estimated one is deterministic, see
# tests/test_forward_cost.py, but off keeps every sample trainable); the memory estimate bounds the cost.
FAST = ["dataset.image_size=8", "dataset.n_train=512", "dataset.n_valid=256", "dataset.n_test=256",
        "trainer.max_epochs=1", "search.budget=8", "strategy.population_size=4", "logger=none",
        "search.progress=false", "trainer.forward_time_limit_s=null", "trainer.time_budget_s=null",
        "trainer.memory_limit_mb=64"]
DETERMINISTIC_KEYS = ("index", "iteration", "arch", "val_acc", "status", "origin", "parent", "prediction", "seed")


def search_config(*overrides: str, output_dir: str | Path | None = None):
    """``output_dir`` (``paths.output_dir``) holds the shared first generation; by default a fresh
    temporary folder, so tests never share one by accident nor write into the repository."""
    output_dir = output_dir or tempfile.mkdtemp(prefix="nas-test-outputs-")
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="search", overrides=[*FAST, f"paths.output_dir={output_dir}", *overrides])


def run_dir_for(root: Path, cfg) -> Path:
    """The same layout Hydra uses for a run directory under ``root``."""
    return root / cfg.dataset.name / f"{cfg.strategy.name}-{cfg.surrogate.name}-{cfg.encoding.name}" / f"seed={cfg.seed}"


def deterministic_view(records):
    return [{k: r.get(k) for k in DETERMINISTIC_KEYS} for r in records]
