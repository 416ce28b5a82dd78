"""Architecture-string tables: what a language-model surrogate trains and is scored on.

One table per search run, rows in search order, with the columns ``id``, ``arch`` (the short
string), ``arch_long`` and ``accuracy`` (a fraction; failed trainings are 0.0, as in the feature
tables). ``surrogates.predictors.tables.feature_columns`` of such a table is ``[arch, arch_long]``,
which the LM reads as the short and the long string, so the protocols of ``surrogates.protocols``
run on these tables unchanged.

``load_string_archive(sources)`` returns ``{dataset: {seed: table}}`` (the shape of
``load_feature_archive``) from any mix of:

- a search run directory (``experiment.json`` + ``archive.jsonl``): its trained candidates,
  exactly the rows of its feature table (``TRAINED_STATUSES``);
- a directory holding our transfer exports ``<dataset>_seed=<s>.strings.csv``
  (``evaluate.py task=features`` writes them next to the feature files);
- any other directory: every search run below it (a sweep directory);
- a CSV in the paper's layout (seed_system.md §7.1): ``arch`` (short), ``arch_long``, ``acc`` and,
  in multi-task files, ``dataset`` and ``seed`` (``"seed=<n>"`` or ``<n>``) with rows in search
  order. Without a ``dataset`` column the dataset is the file's stem, or its folder's name for the
  paper's ``<task>/train.csv`` / ``val.csv``; without ``seed`` it is 0. ``accuracy`` is accepted
  for ``acc``, and a missing short string is derived from the long one.

The same (dataset, seed) from two sources is an error naming both: pooling them silently would
count one search twice.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from surrogates.predictors.tables import ID_COLUMN, TARGET_COLUMN

__all__ = [
    "STRING_COLUMNS",
    "STRINGS_SUFFIX",
    "string_table",
    "run_string_table",
    "read_paper_csv",
    "load_string_archive",
    "to_paper_layout",
]

STRING_COLUMNS = ("arch", "arch_long")
STRINGS_SUFFIX = ".strings.csv"
TRAINED_STATUSES = ("ok", "nan", "zero_acc")  # the candidates a feature or string table holds
_EXPORT_RE = re.compile(r"^(?P<dataset>.+)_seed=(?P<seed>\d+)\.strings\.csv$")
_SEED_RE = re.compile(r"^(?:seed=)?(\d+)$")
_SPLIT_STEMS = ("train", "val", "valid", "validation", "test")


def string_table(ids: Sequence[int], long: Sequence[str], accuracy: Sequence[float],
                 short: Sequence[str] | None = None) -> pd.DataFrame:
    """A table with the canonical columns; the short strings are derived when not given."""
    from surrogates.predictors.language_model import short_from_long

    long = [str(s) for s in long]
    short = [short_from_long(s) for s in long] if short is None else [str(s) for s in short]
    return pd.DataFrame({ID_COLUMN: list(ids), "arch": short, "arch_long": long,
                         TARGET_COLUMN: pd.to_numeric(pd.Series(list(accuracy), dtype=object), errors="coerce")})


def run_string_table(run_dir: str | Path) -> tuple[str, int, pd.DataFrame]:
    """``(dataset, seed, table)`` of one search run: its trained candidates in search order."""
    from nas.search.archive import read_archive

    run_dir = Path(run_dir)
    experiment_file = run_dir / "experiment.json"
    if not experiment_file.exists():
        raise FileNotFoundError(f"{run_dir} is not a search run directory (no experiment.json)")
    experiment = json.loads(experiment_file.read_text())
    records = [r for r in read_archive(run_dir / "archive.jsonl") if r.get("status") in TRAINED_STATUSES]
    table = string_table([r["index"] for r in records], [r["arch"] for r in records],
                         [r["val_acc"] if r["status"] == "ok" else 0.0 for r in records])
    return str(experiment["dataset"]["name"]), int(experiment["seed"]), table


def _seed_of(value) -> int:
    match = _SEED_RE.match(str(value).strip())
    if match is None:
        raise ValueError(f"seed {value!r} is neither <n> nor 'seed=<n>'")
    return int(match.group(1))


def read_paper_csv(path: str | Path) -> dict[str, dict[int, pd.DataFrame]]:
    """A CSV in the paper's layout (see the module doc) as ``{dataset: {seed: table}}``."""
    path = Path(path)
    frame = pd.read_csv(path)
    frame.columns = [str(c) for c in frame.columns]
    target = "acc" if "acc" in frame.columns else TARGET_COLUMN if TARGET_COLUMN in frame.columns else None
    if target is None or "arch_long" not in frame.columns and "arch" not in frame.columns:
        raise ValueError(f"{path}: expected the columns arch_long (or arch) and acc (the paper's layout: arch, "
                         f"arch_long, acc[, dataset, seed]); found {list(frame.columns)[:10]}")
    if "arch_long" not in frame.columns:
        raise ValueError(f"{path}: only short strings (arch); the tables need the long string (arch_long), "
                         "from which the short one is derived. Export search runs with evaluate.py task=features, "
                         "or pass the run directories themselves")
    if "dataset" in frame.columns:
        datasets = frame["dataset"].astype(str)
    else:
        name = path.parent.name if path.stem in _SPLIT_STEMS else path.stem
        datasets = pd.Series([name] * len(frame), index=frame.index)
    seeds = frame["seed"].map(_seed_of) if "seed" in frame.columns else pd.Series(0, index=frame.index)
    ids = frame[ID_COLUMN] if ID_COLUMN in frame.columns else None
    out: dict[str, dict[int, pd.DataFrame]] = {}
    for (dataset, seed), rows in frame.groupby([datasets, seeds], sort=False):
        short = rows["arch"] if "arch" in rows.columns else None
        row_ids = ids.loc[rows.index] if ids is not None else range(len(rows))
        out.setdefault(str(dataset), {})[int(seed)] = string_table(row_ids, rows["arch_long"], rows[target], short)
    return out


def to_paper_layout(table: pd.DataFrame, dataset: str, seed: int) -> pd.DataFrame:
    """A string table in the paper's column layout (our transfer export ``*.strings.csv``)."""
    return pd.DataFrame({"arch": table["arch"], "arch_long": table["arch_long"], "acc": table[TARGET_COLUMN],
                         "dataset": dataset, "seed": f"seed={seed}", ID_COLUMN: table[ID_COLUMN]})


def _runs_below(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("archive.jsonl") if (p.parent / "experiment.json").exists())


def _tables_of(source: Path) -> list[tuple[str, int, pd.DataFrame, str]]:
    """Every (dataset, seed, table, label) one source holds."""
    if source.is_file():
        return [(d, s, t, str(source)) for d, runs in read_paper_csv(source).items() for s, t in runs.items()]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such file or directory (give search run dirs, a sweep dir, a "
                                f"transfer export dir with *{STRINGS_SUFFIX} files, or a CSV in the paper's layout)")
    if (source / "experiment.json").exists():
        dataset, seed, table = run_string_table(source)
        return [(dataset, seed, table, str(source))]
    exports = sorted(p for p in source.iterdir() if _EXPORT_RE.match(p.name))
    if exports:
        return [(d, s, t, str(p)) for p in exports for d, runs in read_paper_csv(p).items() for s, t in runs.items()]
    runs = _runs_below(source)
    if not runs:
        raise FileNotFoundError(f"{source}: no search run (experiment.json + archive.jsonl) below it and no "
                                f"*{STRINGS_SUFFIX} export in it")
    return [(*run_string_table(run), str(run)) for run in runs]


def load_string_archive(sources: str | Path | Iterable[str | Path],
                        datasets: Iterable[str] | None = None) -> dict[str, dict[int, pd.DataFrame]]:
    """``{dataset: {seed: table}}`` from the sources (see the module doc), optionally some datasets."""
    if sources is None:
        raise ValueError("no data: give search run dirs, sweep dirs, transfer exports or paper CSVs")
    if isinstance(sources, str | Path):
        sources = [sources]
    wanted = None if datasets is None else {str(d) for d in datasets}
    archive: dict[str, dict[int, pd.DataFrame]] = {}
    origin: dict[tuple[str, int], str] = {}
    for source in sources:
        for dataset, seed, table, label in _tables_of(Path(str(source)).expanduser()):
            if wanted is not None and dataset not in wanted:
                continue
            if (dataset, seed) in origin:
                raise ValueError(f"{dataset} seed {seed} comes from two sources ({origin[dataset, seed]} and "
                                 f"{label}); give each search once")
            origin[dataset, seed] = label
            archive.setdefault(dataset, {})[seed] = table
    if not archive:
        shown = ", ".join(map(str, sources))
        raise ValueError(f"no architecture strings in {shown}" + (f" for datasets {sorted(wanted)}" if wanted else ""))
    return {d: dict(sorted(runs.items())) for d, runs in sorted(archive.items())}
