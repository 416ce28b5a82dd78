"""The README's numbers are the configs' numbers: a test that fails when either drifts."""
from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]


def _compose(overrides=()):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="search", overrides=list(overrides))


def _quick_sentence() -> str:
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    match = re.search(r"\*\*Quick vs paper settings\*\*: the embedded datasets run a small search \((.*?)\); every", text)
    assert match, "README lost its 'Quick vs paper settings' sentence"
    return match.group(1)


def test_readme_quick_settings_are_the_quick_block():
    sentence = _quick_sentence()
    numbers = {
        "budget": r"budget (\d+)", "population": r"population (\d+)", "epochs": r"(\d+) epochs",
        "forward": r"forward-time limit ([\d.]+) s", "proxy_batch": r"proxy batch (\d+)",
        "memory": r"memory limit (\d+) MB",
    }
    found = {key: float(re.search(pattern, sentence).group(1)) for key, pattern in numbers.items()}
    cfg = _compose()
    assert cfg.dataset.name == "mini_addnist"  # the quick block applies to the default
    assert found == {
        "budget": cfg.search.budget, "population": cfg.strategy.population_size,
        "epochs": cfg.trainer.max_epochs, "forward": cfg.trainer.forward_time_limit_s,
        "proxy_batch": cfg.encoding.batch_size, "memory": cfg.space.mem_limit_mb,
    }
    assert "estimated on a CPU" in sentence and cfg.trainer.forward_time == "auto"
    assert "time budget" not in sentence and cfg.trainer.time_budget_s == "auto"


def test_readme_paper_settings_are_experiment_paper():
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    match = re.search(r"other dataset gets the paper's \(population (\d+), (\d+) iterations, (\d+) epochs", text)
    assert match, "README lost the paper's settings sentence"
    population, budget, epochs = map(int, match.groups())
    for overrides in (["dataset=addnist"], ["experiment=paper"]):
        cfg = _compose(overrides)
        assert (cfg.strategy.population_size, cfg.search.budget, cfg.trainer.max_epochs) == (population, budget, epochs)
