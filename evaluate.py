"""Measure finished runs (DESIGN §1.4).

    python evaluate.py task=sweep sweep_dir=outputs/multirun/paper_baselines

Writes sweep_summary.{csv,md} (dataset x arm: best validation accuracy, mean ± standard error
over seeds) and sweep_<dataset>.png (best-so-far curves) into outputs/evaluate/sweep/<time>/.
"""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from nas.search.evaluate_cli import main as evaluate_main  # imported here: `--help` stays fast

    evaluate_main(cfg)


if __name__ == "__main__":
    main()
