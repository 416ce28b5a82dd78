"""Feature tables of search runs (seed_system.md §8.1): ``id``, the encoder's columns, ``accuracy``.

Rows are the trained candidates in search order: ``ok`` ones with their validation accuracy, and
those that trained to NaN or exactly 0 with accuracy 0.0 (the paper's files hold such zeros;
transfer training drops them, one-to-one testing keeps them). Candidates rejected before training
(too slow, too large, ...) have no accuracy and are left out.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from nas.search.archive import read_archive

TRAINED_STATUSES = ("ok", "nan", "zero_acc")


def feature_table(records: list[dict], space, encoder) -> pd.DataFrame:
    rows = [r for r in records if r["status"] in TRAINED_STATUSES]
    frame = encoder.encode_frame([space.parse(r["arch"]) for r in rows])
    frame.insert(0, "id", [r["index"] for r in rows])
    frame["accuracy"] = [r["val_acc"] if r["status"] == "ok" else 0.0 for r in rows]
    return frame


def run_features(run_dir: str | Path, encoding: dict, export_dir: str | Path | None = None) -> tuple[Path, Path | None]:
    """Encode a finished (or running) search's archive into ``<run>/features.csv`` and, with
    ``export_dir``, a copy named ``<dataset>_seed=<seed>.csv`` there (the transfer layout)."""
    from hydra.utils import instantiate

    from nas.logging import atomic_write_text
    from nas.space import EinSpace
    from surrogates.encodings import NEEDS_DATA, create_encoder

    run_dir = Path(run_dir)
    experiment_file = run_dir / "experiment.json"
    if not experiment_file.exists():
        raise FileNotFoundError(f"{run_dir} is not a search run directory (no experiment.json)")
    experiment = json.loads(experiment_file.read_text())
    space_cfg = {k: v for k, v in experiment["space"].items() if k != "_target_"}
    space = EinSpace(**space_cfg)
    params = dict(encoding)
    name = params.pop("name")
    batch_size = int(params.pop("batch_size", 256))
    context = None
    if name in NEEDS_DATA:
        datamodule = instantiate(OmegaConf.create(experiment["dataset"]))
        datamodule.setup()
        context = {"space": space, "batch": datamodule.example_batch(batch_size),
                   "num_classes": datamodule.num_classes, "seed": 0}
    encoder = create_encoder(name, context=context, **params)
    frame = feature_table(read_archive(run_dir / "archive.jsonl"), space, encoder)
    out = run_dir / "features.csv"
    atomic_write_text(out, frame.to_csv(index=False))
    exported = None
    if export_dir is not None:
        exported = Path(export_dir) / f"{experiment['dataset']['name']}_seed={experiment['seed']}.csv"
        atomic_write_text(exported, frame.to_csv(index=False))
    return out, exported
