"""``archive.jsonl``: one JSON object per evaluated candidate, appended and flushed per line.

The checkpoint records how many lines it covers; on resume the file is cut back to that many
lines (a run killed between writing a line and its checkpoint redoes that candidate, with the
same seed, so the archive ends up identical to an uninterrupted run's). Without a checkpoint the
state is rebuilt by replaying the archive (``nas.search.replay``), and the file is cut only after
the last record that replays. Nothing cut is lost: the lines cut (a last line a kill left half
written included) are appended to ``<archive>.redone.jsonl`` first. The file is never cut
otherwise.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

from nas.logging import to_jsonable

log = logging.getLogger(__name__)


class ArchiveError(RuntimeError):
    pass


class Archive:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: list[dict] = []

    def load(self, keep: int | None = None, warn: bool = True, cut: bool = True) -> list[dict]:
        """Read the archive, keeping the first ``keep`` records and cutting the file after them
        (``None``: keep every complete line; a last line cut short by a kill is set aside). The
        lines cut go to ``aside_path``; ``warn=False``: the caller says why they were cut;
        ``cut=False``: only read, the file is left as it is."""
        self.records = []
        if not self.path.exists():
            if keep:
                raise ArchiveError(f"{self.path} is missing but the checkpoint covers {keep} candidates; "
                                   "rerun with search.restart=true to start this run over")
            return self.records
        data = self.path.read_bytes()
        offset = 0
        while offset < len(data) and (keep is None or len(self.records) < keep):
            end = data.find(b"\n", offset)
            if end < 0:
                break  # a partial last line: never covered by a checkpoint
            line = data[offset:end]
            if line.strip():
                try:
                    self.records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ArchiveError(f"{self.path}: record {len(self.records) + 1} is not valid JSON; "
                                       "rerun with search.restart=true to start this run over") from None
            offset = end + 1
        if keep is not None and len(self.records) < keep:
            raise ArchiveError(f"{self.path} holds {len(self.records)} candidates but the checkpoint covers "
                               f"{keep}; rerun with search.restart=true to start this run over")
        if offset < len(data) and cut:
            self._keep_aside(data[offset:], warn)
            with open(self.path, "r+b") as fh:
                fh.truncate(offset)
        return self.records

    @property
    def aside_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".redone.jsonl")

    def _keep_aside(self, tail: bytes, warn: bool = True) -> None:
        """Append the lines a resume will redo to ``aside_path`` (flushed before the cut)."""
        if not tail.endswith(b"\n"):
            tail += b"\n"
        with open(self.aside_path, "ab") as fh:
            fh.write(tail)
            fh.flush()
            os.fsync(fh.fileno())
        lines = tail.count(b"\n")
        if warn and (lines > 1 or len(self.records) == 0):  # more than the one candidate a kill interrupts
            log.warning("%d line(s) of %s past its checkpoint are redone; kept in %s", lines, self.path,
                        self.aside_path)

    def append(self, record: dict) -> dict:
        record = to_jsonable(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records.append(record)
        return record

    def __len__(self) -> int:
        return len(self.records)


def read_archive(path: str | os.PathLike, warn: bool = False) -> list[dict]:
    """All complete records of an archive file (read-only). A line that is not a JSON object (a
    last line a kill left half written) is skipped; ``warn`` says how many with a ``UserWarning``."""
    records, skipped = [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                skipped += 1
    if warn and skipped:
        warnings.warn(f"{path}: skipped {skipped} unreadable line(s)", stacklevel=2)
    return records
