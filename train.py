"""Train one architecture from scratch (DESIGN §1.3).

    python train.py                                   # the resnet18 seed, search protocol
    python train.py arch=vit trainer=final            # 64 epochs on train+valid, test accuracy
    python train.py arch='sequential(...)'            # any long or short architecture string
    python train.py run=outputs/search/<...>          # the best architecture of a search run
    python train.py trainer.max_epochs=4 logger=csv dataset=addnist seed=1

Writes result.json (metrics, architecture strings, status, resolved config) into
outputs/train/<dataset>/<timestamp>/. The logic lives in nas/training/cli.py.
"""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from nas.training.cli import main as train_main  # imported here: `--help` stays fast

    return train_main(cfg)


if __name__ == "__main__":
    main()
