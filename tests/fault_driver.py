"""Run search.py with one injected fault: SIGKILL at the n-th call of a chosen function, after a
partial write where that function writes. Nothing in the production code knows about it: the
functions are monkeypatched in this process before the search starts.

    python tests/fault_driver.py FAULT N [hydra overrides of search.py ...]

FAULT (what the n-th call does before the process kills itself):
    archive_line      Archive.append writes half of its line
    checkpoint        save_checkpoint is called (after the candidate's archive line), writes nothing
    checkpoint_write  the atomic write of checkpoint.json writes half of its temporary file
    refit             the surrogate's fit is called (FeatureSurrogate.fit)
    figures           the search figures are being drawn (half of a temporary png written)
    features          the atomic write of features.csv writes half of its temporary file
    result            the atomic write of result.json writes half of its temporary file
    none              no fault (a normal run)

``run_forked`` runs the same in a forked child of the calling process (the test suite), which
saves the seconds of importing torch and Lightning for every run.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAULTS = ("archive_line", "checkpoint", "checkpoint_write", "refit", "figures", "features", "result", "none")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Counter:
    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def hit(self) -> bool:
        self.calls += 1
        return self.calls == self.n


def install(fault: str, n: int) -> None:
    """Patch the target of ``fault`` so that its ``n``-th call in this process writes partially
    (where it writes) and then SIGKILLs the process."""
    if fault not in FAULTS:
        raise SystemExit(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
    if fault == "none":
        return
    counter = _Counter(n)
    import json

    import nas.logging
    import nas.search.checkpoint
    import nas.search.figures
    import nas.search.runner
    import surrogates.feature_tables  # noqa: F401 - imports atomic_write_text lazily from nas.logging
    from nas.logging import to_jsonable
    from nas.search.archive import Archive
    from nas.search.surrogate import FeatureSurrogate

    if fault == "archive_line":
        original_append = Archive.append

        def append(self, record):
            if counter.hit():
                line = (json.dumps(to_jsonable(record), separators=(",", ":")) + "\n").encode()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "ab") as fh:
                    fh.write(line[: len(line) // 2])
                    fh.flush()
                    os.fsync(fh.fileno())
                _die()
            return original_append(self, record)

        Archive.append = append
    elif fault == "checkpoint":
        original_save = nas.search.runner.save_checkpoint

        def save_checkpoint(path, state):
            if counter.hit():
                _die()
            return original_save(path, state)

        nas.search.runner.save_checkpoint = save_checkpoint
    elif fault in ("checkpoint_write", "features", "result"):
        name = {"checkpoint_write": "checkpoint.json", "features": "features.csv", "result": "result.json"}[fault]
        original_write = nas.logging.atomic_write_text

        def atomic_write_text(path, text):
            path = Path(path)
            if path.name == name and counter.hit():
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # as the real one names it
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(text[: len(text) // 2])
                    fh.flush()
                    os.fsync(fh.fileno())
                _die()
            return original_write(path, text)

        for module in list(sys.modules.values()):  # every module that imported the function
            if getattr(module, "atomic_write_text", None) is original_write:
                module.atomic_write_text = atomic_write_text
    elif fault == "refit":
        original_fit = FeatureSurrogate.fit

        def fit(self, features, targets):
            if counter.hit():
                _die()
            return original_fit(self, features, targets)

        FeatureSurrogate.fit = fit
    elif fault == "figures":
        original_figures = nas.search.figures.write_search_figures

        def write_search_figures(records, out_dir, title=""):
            if counter.hit():
                out = Path(out_dir)
                out.mkdir(parents=True, exist_ok=True)
                with open(out / f".accuracy_per_iteration.png.{os.getpid()}.tmp", "wb") as fh:
                    fh.write(b"\x89PNG\r\n\x1a\n")  # a figure half saved
                    fh.flush()
                _die()
            return original_figures(records, out_dir, title)

        nas.search.figures.write_search_figures = write_search_figures


def run_search(overrides: list[str]) -> int:
    """search.py's Hydra entry point with ``overrides``; its exit status."""
    import runpy

    sys.argv = [str(REPO / "search.py"), *overrides]
    try:
        runpy.run_path(str(REPO / "search.py"), run_name="__main__")  # as `python search.py ...`
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def preload() -> None:
    """Import what every search imports, once, in the process that forks the searches."""
    import hydra.core.hydra_config  # noqa: F401
    import matplotlib.pyplot  # noqa: F401

    import nas.search.figures  # noqa: F401
    import nas.search.runner  # noqa: F401
    import nas.training  # noqa: F401
    import surrogates.predictors  # noqa: F401


def run_forked(fault: str, n: int, overrides: list[str], log_path: str | os.PathLike, timeout_s: float = 600) -> int:
    """Run the search with ``fault`` in a forked child; its exit status as
    ``os.waitstatus_to_exitcode`` gives it (``-9``: SIGKILLed). The child's output goes to
    ``log_path``; a child still running after ``timeout_s`` is killed and TimeoutError raised."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller (pytest)
        code = 1
        try:
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = sys.stderr = open(fd, "w", buffering=1, closefd=False)  # pytest replaced them
            install(fault, n)
            code = run_search(overrides)
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"the search with fault {fault}:{n} ran for more than {timeout_s} s; see {log_path}")
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    install(argv[0], int(argv[1]))
    return run_search(argv[2:])


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
