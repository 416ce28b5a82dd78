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
    from nas.validation import InputError, check_seed

    try:  # a bad seed in a second, a bad architecture before Lightning and the data are loaded
        check_seed(cfg.get("seed"))
        from nas.architecture_input import ArchitectureError, check_train_inputs
    except InputError as exc:
        raise SystemExit(f"train.py: error: {exc}") from None
    try:
        check_train_inputs(cfg)
    except (InputError, ArchitectureError) as exc:
        raise SystemExit(f"train.py: error: {exc}") from None
    from nas.training.cli import main as train_main  # imported here: `--help` stays fast

    return train_main(cfg)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C outside the task (start-up, between sweep jobs): one line, 130
        from nas.hydra_utils import command_line, interrupted

        interrupted("train.py", f"while starting up (no result.json written); to run it: {command_line()}")
