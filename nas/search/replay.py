"""Rebuild a search's resumable state from ``archive.jsonl`` alone (no ``checkpoint.json``).

When is this needed: a run killed after writing its first archive line but before its first
checkpoint, or a user who moved a damaged ``checkpoint.json`` away. Earlier versions set the
whole archive aside and started over; every trained candidate had to be trained again.

Decision: **replay**, not reconstruction. A strategy's state (population, surrogate queue and
batch, surrogate fits, its ``random.Random``) is a deterministic function of its seed and of the
results it was told, and the archive holds every result in order. So a fresh strategy, built
with the same seeds, is asked for candidate 0, 1, ... and told each archived result, exactly as
the run did, but nothing is trained. Each proposal is checked against its archived record
(architecture string, origin, parent, seed-copy accuracy, surrogate prediction); the replay stops
at the first record that does not match. A strategy that is not deterministic cannot be rebuilt
this way, and rebuilding its state field by field from the archive would need every strategy's
internals (the scored queue, the batch snapshot, the RNG position after the breeding of children
that were never trained): replay covers every strategy with one short loop, and the match check
proves the rebuilt state is the one the run had.

What replay does not restore:

* the global RNG states (python, NumPy, torch). They are not needed: every candidate's build and
  training starts with ``seed_everything`` on the candidate's own seed (derived from the run seed
  and its archive index), the pre-checks restore the states they touch, and the proposals,
  encoders and surrogates draw from their own seeded generators.
* what the run logged (``metrics.jsonl``, W&B): the replay logs nothing again.

When replay stops early: the strategy proposes something else than the archive holds at some
index (a pre-check that depends on wall-clock time, such as ``trainer.forward_time_limit_s``,
decided otherwise this time; or the code changed). The records before it are kept and resumed
from, the strategy's differing proposal is evaluated next, and the records from it on are cut
from ``archive.jsonl`` and appended to ``archive.redone.jsonl`` (never deleted), with a warning
naming how many. When not even the first
record matches, the runner refuses with a one-line error instead of touching any file.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PREDICTION_REL_TOL = 1e-6


@dataclass
class Replay:
    """What replaying an archive found."""

    matched: int                      # records replayed (the first ``matched`` of the archive)
    total: int                        # records in the archive
    why: str | None = None            # why the replay stopped before the end (None: it did not)
    failures: Counter = field(default_factory=Counter)  # status -> failed candidates replayed
    consecutive_failures: int = 0
    last_refit_index: int = 0         # archive length at the last surrogate refit
    refits: int = 0
    # The strategy's proposal for the first record that did not match: the strategy has made it
    # (its RNG has moved on), so the run must evaluate it next instead of asking again.
    pending: Any = None


def replay(strategy, records: list[dict[str, Any]]) -> Replay:
    """Ask ``strategy`` for one candidate per record and tell it the record's result, stopping at
    the first proposal that differs from the record. ``strategy`` must be freshly built (the same
    seeds as the run that wrote ``records``); it ends in the state that run had after the last
    matched record."""
    result = Replay(0, len(records))
    for index, record in enumerate(records):
        try:
            proposal = strategy.ask()
        except Exception as err:  # noqa: BLE001 - the original run proposed this candidate
            result.why = f"the strategy failed to propose candidate {index} ({type(err).__name__}: {err})"
            return result
        why = mismatch(proposal, record, index)
        if why is not None:
            result.why, result.pending = why, proposal
            return result
        accuracy = record.get("val_acc") if record.get("status") == "ok" else None
        events = strategy.tell(proposal, index, accuracy)
        if accuracy is None:
            result.failures[record.get("status")] += 1
            result.consecutive_failures += 1
        else:
            result.consecutive_failures = 0
        if events.get("refit") is not None:
            result.last_refit_index = index + 1
            result.refits += 1
        result.matched = index + 1
    return result


def mismatch(proposal, record: dict[str, Any], index: int) -> str | None:
    """Why ``proposal`` is not the candidate archived as ``record`` (None: it is)."""
    where = f"candidate {index}"
    if record.get("index") != index:
        return f"{where}: the archive's record {index} has index {record.get('index')!r}"
    if proposal is None:
        return f"{where}: the strategy proposes nothing more, the archive holds {record.get('arch', '?')[:60]!r}"
    arch = proposal.arch.long_string
    if arch != record.get("arch"):
        return f"{where}: the strategy proposes {_short(arch)}, the archive holds {_short(record.get('arch'))}"
    for key in ("origin", "parent"):
        if getattr(proposal, key) != record.get(key):
            return f"{where}: {key} {getattr(proposal, key)!r} proposed, {record.get(key)!r} archived"
    if proposal.known_accuracy is not None and proposal.known_accuracy != record.get("val_acc"):
        return f"{where}: seed copy of accuracy {proposal.known_accuracy!r}, archived {record.get('val_acc')!r}"
    if not _same_number(proposal.prediction, record.get("prediction")):
        return f"{where}: prediction {proposal.prediction!r} proposed, {record.get('prediction')!r} archived"
    return None


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None or _not_finite(a) or _not_finite(b)  # NaN is archived as null
    return math.isclose(float(a), float(b), rel_tol=PREDICTION_REL_TOL, abs_tol=1e-12)


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _short(text: Any, limit: int = 60) -> str:
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")
