"""The loop of one local worker process (``nas.search.workers.local``).

It builds its space, data and trainer once (the data stays in memory, on its GPU when it has
one), says it is ready, then trains the candidates it is sent, one at a time, and sends each
result back. It ignores Ctrl-C (the search process stops it) and exits by itself when the search
process is gone (killed), so that no orphan keeps training.

Imports stay inside the functions: the child of a ``spawn`` imports this module before its
environment (threads, its GPU) has been applied by the libraries that read it.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any


def main(worker: int, conn: Any, source: Any, threads: int) -> None:
    """``source``: an object with ``evaluate(task)``, the search's ``EvaluationContext`` (a forked
    worker shares its data), or the config groups to build one from (a spawned worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    try:
        import torch

        torch.set_num_threads(threads)
        from nas.search.workers.task import EvaluationContext, Task

        context = source if hasattr(source, "evaluate") else EvaluationContext.build(source)
    except BaseException as err:  # noqa: BLE001 - reported to the search, which stops with it
        import traceback

        conn.send(("setup_failed", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=8)}"))
        return
    device = getattr(getattr(context, "datamodule", None), "device", "cpu")
    conn.send(("ready", {"pid": os.getpid(), "device": str(device)}))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        task = Task(**message[1])
        try:
            result = context.evaluate(task)
        except Exception as err:  # noqa: BLE001 - evaluate_candidate maps its own; this is a last resort
            result = {"val_acc": None, "status": "error", "reason": f"{type(err).__name__}: {err}", "seconds": 0.0}
        conn.send(("result", task.index, result))


def _exit_with_parent() -> None:
    """A daemon thread that ends this process as soon as its parent (the search) has ended."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
