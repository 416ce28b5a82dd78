"""Train one architecture from scratch (DESIGN §1.3), or fine-tune a language-model surrogate.

    python train.py                                   # the resnet18 seed, search protocol
    python train.py arch=vit trainer=final            # 64 epochs on train+valid, test accuracy
    python train.py arch='sequential(...)'            # any long or short architecture string
    python train.py run=outputs/search/<...>          # the best architecture of a search run
    python train.py trainer.max_epochs=4 logger=csv dataset=addnist seed=1

Writes result.json (metrics, architecture strings, status, resolved config) into
outputs/train/<dataset>/<timestamp>/. The logic lives in nas/training/cli.py.

    python train.py task=surrogate data=outputs/transfer target=addnist      # leave addnist out
    python train.py task=surrogate data=[runA,runB] eval_data=runC surrogate=bert
    python train.py task=surrogate data=outputs/transfer target=addnist checkpoint_dir=outputs/lm/addnist

Fine-tunes a language-model surrogate on architecture strings and writes a checkpoint directory
(model, tokenizer, info.json, predictions.csv, predictions.png) into
outputs/train/surrogate/<model>-<target>/<timestamp>/checkpoint, or into checkpoint_dir when set
(kept, not redone, when a finished checkpoint is already there). The logic lives in
surrogates/fine_tuning.py.
"""
import hydra
from omegaconf import DictConfig

from nas.hydra_utils import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from nas.validation import InputError, check_seed

    if cfg.get("task", "architecture") != "architecture":
        return _fine_tune(cfg)

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


def _fine_tune(cfg: DictConfig) -> float | None:
    """``task=surrogate``: one line per bad input, the checkpoint's path and metrics at the end."""
    from nas.hydra_utils import CtrlC, command_line, hydra_run_dir

    if cfg.task != "surrogate":
        raise SystemExit(f"train.py: error: unknown task {cfg.task!r}; use task=architecture or task=surrogate")
    try:
        from surrogates.fine_tuning import fine_tune_task
        from surrogates.predictors.language_model import LanguageModelUnavailable
    except ImportError as err:  # the optional transformers stack
        raise SystemExit(f"train.py: error: task=surrogate needs transformers ({err}); pip install -e '.[lm]'") from None
    run_dir = hydra_run_dir()
    with CtrlC("train.py", lambda: f"while fine-tuning (no checkpoint written); to start over: {command_line()}"):
        try:
            info = fine_tune_task(cfg, run_dir)
        except (ValueError, FileNotFoundError, LanguageModelUnavailable) as exc:
            raise SystemExit(f"train.py: error: {exc}") from None
    evaluation = info["metrics"].get("evaluation") or info["metrics"].get("selection") or {}
    tau = evaluation.get("kendall_tau")
    if info.get("kept"):  # checkpoint_dir=<dir> already held a finished fine-tuning: nothing was done
        print(f"kept {info['checkpoint']}: it holds a finished fine-tuning (info.json); nothing trained or "
              "rewritten", flush=True)
        return tau
    print(f"fine-tuned {cfg.surrogate.name} ({info['mode']}{', target ' + str(info['target']) if info['target'] else ''}): "
          f"epoch {info['epoch']} of {info['epochs']}, Kendall tau {'-' if tau is None else f'{tau:.4f}'} on "
          f"{'evaluation' if info['metrics'].get('evaluation') else 'selection'} rows, {info['seconds']:.0f} s "
          f"-> {info['checkpoint']}", flush=True)
    return tau


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C outside the task (start-up, between sweep jobs): one line, 130
        from nas.hydra_utils import command_line, interrupted

        interrupted("train.py", f"while starting up (no result.json written); to run it: {command_line()}")
