"""Small helpers the entry points share about the Hydra job they run in."""
from __future__ import annotations

from pathlib import Path


def hydra_run_dir() -> Path:
    """The current job's output directory (run dir, or the sweep job's subdir)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def group_factory(node):
    """Instantiate a config group (``_target_`` with ``_partial_: true``) into its factory.

    The one convention for group names: every group carries ``name``, which names run dirs, W&B
    runs and the experiment identity (so it must stay in the saved config), and is not a
    constructor argument; this is the one place that leaves it out."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    params = OmegaConf.to_container(node, resolve=True)
    params.pop("name", None)
    return instantiate(params)


def train_subdir(task: str, dataset: str, surrogate: str | None, target: str | None) -> str:
    """``train.py``'s run folder below ``outputs/train/``: ``<dataset>`` for an architecture,
    ``surrogate/<surrogate>-<target or single>`` for a fine-tuning (``task=surrogate``)."""
    if task == "surrogate":
        return f"surrogate/{surrogate}-{target if target not in (None, '', 'None') else 'single'}"
    return str(dataset)


def register_resolvers() -> None:
    """The resolvers our configs use (``${train_subdir:...}``); safe to call more than once."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("train_subdir", train_subdir, replace=True)


def single_run() -> bool:
    """True for ``python x.py ...`` (exit codes matter), False inside a multirun sweep, where a
    failing job must not end the whole sweep. Outside Hydra: behave like a single run."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.RUN
    except ValueError:
        return True


# ----------------------------------------------------------------------------- Ctrl-C
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a job stopped by Ctrl-C


def command_line() -> str:
    """The command this process runs, ready to paste into a shell: ``python search.py a=1 ...``."""
    import shlex
    import sys

    return "python " + shlex.join(sys.argv)


def interrupted(prog: str, what: str) -> None:
    """Print ``<prog>: interrupted <what>`` on stderr (one line) and exit with status 130."""
    import sys

    print(f"{prog}: interrupted {what}", file=sys.stderr, flush=True)
    raise SystemExit(INTERRUPTED_EXIT)


class CtrlC:
    """Turn Ctrl-C inside the ``with`` block into one line on stderr and exit status 130.

    ``with CtrlC("search.py", describe):`` where ``describe()`` returns what follows
    "interrupted" (where the run stopped, how to resume). Lightning catches a Ctrl-C during
    ``fit`` itself and calls ``sys.exit(1)``; to tell that exit from others, a SIGINT handler
    notes the signal while the block runs (installed only when Python's default handler is in
    place: a job started with SIGINT ignored, e.g. ``nohup``, keeps ignoring it). Hydra runs
    multirun jobs in this process and catches only ``Exception``, so the exit also ends a sweep.
    """

    def __init__(self, prog: str, describe) -> None:
        self.prog, self.describe = prog, describe
        self.signalled = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        self.signalled = True
        raise KeyboardInterrupt

    def __enter__(self) -> CtrlC:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if kind is not None and (issubclass(kind, KeyboardInterrupt)
                                 or (issubclass(kind, SystemExit) and self.signalled)):
            try:
                what = self.describe()
            except Exception:  # noqa: BLE001 - the line must come out whatever state the run is in
                what = f"(rerun the same command: {command_line()})"
            interrupted(self.prog, what)
        return False
