"""Read the search runs of a sweep from disk, read-only.

A sweep directory (``outputs/multirun/<sweep_name>``, or ``outputs/search``) holds run directories
laid out as ``<dataset>/<arm>/seed=<s>/`` (``arm`` = ``<strategy>-<surrogate>-<encoding>``), each
with the files a search writes:

- ``archive.jsonl``: one record per evaluated candidate (``val_acc``, ``status``, ``origin``,
  ``prediction``, ``seconds``, ...); required: a directory without it is not a run;
- ``result.json``: written when the search finished (``wall_seconds`` among others); absent for a
  run still going or stopped;
- ``final/result.json``: the final test of the run's best architecture, put there by the
  pipeline's last phase (``train.py`` with ``trainer=final``, its output dir set there): what
  ``train.py`` writes, i.e. ``status`` and ``test_acc``. Absent until that phase ran: the report
  then shows a dash and counts the runs that lack it.

Folders set aside by ``search.restart`` (``restarted-*``) are not runs of the sweep.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.search.archive import read_archive
from nas.search.run_dir import RESULT

ARCHIVE = "archive.jsonl"
FINAL_DIR = "final"  # <run dir>/final/result.json: the pipeline's final test of the best architecture
_SEED_RE = re.compile(r"^seed=(.+)$")


@dataclass
class Run:
    """One search run: where it is, what it evaluated, and its results when they exist."""

    dataset: str
    arm: str
    seed: str
    path: Path
    records: list[dict[str, Any]]
    result: dict[str, Any] | None = None  # result.json: None while the search has not finished
    final: dict[str, Any] | None = None  # final/result.json: None until the final test ran


def _seed_key(seed: str) -> tuple[int, Any]:
    """Seeds sort as numbers when they are numbers (seed=2 before seed=10)."""
    return (0, int(seed)) if seed.lstrip("-").isdigit() else (1, seed)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None when the file is missing; a damaged file is an error naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} cannot be read as JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return value


def collect_runs(sweep_dir: str | Path, final_dir: str = FINAL_DIR) -> list[Run]:
    """Every run under ``sweep_dir``, sorted by dataset, arm and seed.

    Raises ``FileNotFoundError`` when ``sweep_dir`` does not exist or holds no run, so that
    ``evaluate.py`` ends with one line saying so.
    """
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep_dir={root} is not a directory; pass the folder of a sweep, "
                                "e.g. sweep_dir=outputs/multirun/<sweep_name>")
    runs = []
    for archive in root.rglob(ARCHIVE):
        run_dir = archive.parent
        seed = _SEED_RE.match(run_dir.name)
        if seed is None or any(p.startswith("restarted-") for p in run_dir.relative_to(root).parts):
            continue
        runs.append(Run(dataset=run_dir.parents[1].name, arm=run_dir.parent.name, seed=seed.group(1),
                        path=run_dir, records=read_archive(archive), result=_read_json(run_dir / RESULT),
                        final=_read_json(run_dir / final_dir / RESULT) if final_dir else None))
    if not runs:
        raise FileNotFoundError(f"no <dataset>/<arm>/seed=<s>/{ARCHIVE} under {root}")
    return sorted(runs, key=lambda r: (r.dataset, r.arm, _seed_key(r.seed)))
