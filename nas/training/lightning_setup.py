"""Lightning, quiet and lean for one Trainer per candidate: no per-Trainer banners, no repeated
entry-point scan, and the warnings that do not apply to in-memory candidates filtered."""
from __future__ import annotations

import logging

_QUIET_DONE = False


def quiet_lightning() -> None:
    """Silence Lightning's per-Trainer chatter (device banners such as "GPU available: ...").

    They are printed for every Trainer, i.e. every candidate of a search.
    """
    global _QUIET_DONE
    if _QUIET_DONE:
        return
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
        "lightning.fabric.utilities.seed",
        "lightning.fabric.utilities.rank_zero",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    _skip_empty_callback_entry_points()
    _QUIET_DONE = True


def _skip_empty_callback_entry_points() -> None:
    """Look up Lightning's external-callback entry points once per process, not per Trainer.

    ``Trainer.__init__`` scans every installed distribution's entry points for callback
    factories (~12 ms, the largest part of constructing a lean Trainer). With one Trainer per
    candidate that is pure overhead; the installed packages do not change while a search runs.
    If the group has factories, Lightning's own loader still runs every time (fresh callbacks).
    """
    try:
        from importlib.metadata import entry_points

        from lightning.pytorch.trainer.connectors import callback_connector
    except ImportError:  # pragma: no cover - other Lightning layouts: keep the default behaviour
        return
    original = getattr(callback_connector, "_load_external_callbacks", None)
    if original is None or getattr(original, "_nas_cached", False):
        return
    has_factories: dict[str, bool] = {}

    def load_external_callbacks(group: str) -> list:
        if group not in has_factories:
            has_factories[group] = bool(list(entry_points(group=group)))
        return original(group) if has_factories[group] else []

    load_external_callbacks._nas_cached = True  # type: ignore[attr-defined]
    callback_connector._load_external_callbacks = load_external_callbacks


# Warnings that are wrong or irrelevant for in-memory candidates (ecosystem.md §4.4): the worker
# hint (no workers is right for tensors in memory) and a Lightning-internal torch deprecation.
IGNORED_WARNINGS = (
    r".*does not have many workers.*",
    r".*The number of training batches.*logging interval.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)
