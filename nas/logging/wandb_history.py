"""Reading what an offline W&B run holds, without W&B's servers: the steps in its transaction
log, so a resumed start can send the rows a killed start never flushed."""
from __future__ import annotations

import os
from pathlib import Path


def wandb_history_steps(path: str | os.PathLike) -> list[int]:
    """The history steps stored in one offline W&B transaction log (``run-<id>.wandb``).

    The file is a LevelDB-style log (a 7-byte ``:W&B`` header, then 32 KiB blocks of records with a
    7-byte header: crc, length, type) of ``wandb.proto`` ``Record`` messages. Reading stops at the
    first torn or unreadable record: a killed process leaves whatever wandb-core had flushed (every
    15 s by default in wandb 0.31, so a short-lived start may leave the header only). Raises
    ``ValueError`` when the file is not in this format (another wandb version).
    """
    from wandb.proto import wandb_internal_pb2

    block, header = 32 * 1024, 7
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    steps: list[int] = []
    pos, pending = header, b""
    while pos + header <= len(data):
        left = block - pos % block
        if left < header:  # block trailer
            pos += left
            continue
        length = int.from_bytes(data[pos + 4:pos + 6], "little")
        kind = data[pos + 6]
        pos += header
        if (length == 0 and kind == 0) or pos + length > len(data) or kind not in (1, 2, 3, 4):
            break  # padding at the end, or a torn record
        chunk, pos = data[pos:pos + length], pos + length
        if kind == 2:  # first
            pending = chunk
            continue
        if kind == 3:  # middle
            pending += chunk
            continue
        payload, pending = (pending + chunk if kind == 4 else chunk), b""
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError; a damaged record ends the scan
            break
        if record.WhichOneof("record_type") == "history":
            steps.append(int(record.history.step.num))
    return steps
