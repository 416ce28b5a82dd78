"""Run a neural architecture search (DESIGN §1.1). Rerunning the same command resumes it.

    python search.py                                      # quick demo on the embedded mini_addnist
    python search.py dataset=addnist strategy=surrogate_evolution surrogate=random seed=42
    python search.py experiment=paper dataset=multnist     # the paper's full settings
    python search.py -m dataset=addnist,multnist seed=0,1,2 surrogate=random   # a sweep

Writes archive.jsonl, checkpoint.json, result.json and figures/ into
outputs/search/<dataset>/<strategy>-<surrogate>-<encoding>/seed=<seed>/. Logic: nas/search/.
"""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
def main(cfg: DictConfig) -> float | None:
    from nas.search.cli import main as search_main  # imported here: `--help` stays fast

    return search_main(cfg)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C outside the task (start-up, between sweep jobs): one line, 130
        from nas.hydra_utils import command_line, interrupted

        interrupted("search.py", f"while starting up; to run (or resume) it: {command_line()}")
