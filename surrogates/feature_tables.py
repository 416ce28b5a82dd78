"""Encoding a search run into its feature table (seed_system.md §8.1): ``id``, the encoder's
columns, ``accuracy``. Reading and pooling such tables: ``surrogates.predictors.tables``.

Rows are the trained candidates in search order: ``ok`` ones with their validation accuracy, and
those that trained to NaN or exactly 0 with accuracy 0.0 (the paper's files hold such zeros;
transfer training drops them, one-to-one testing keeps them). Candidates rejected before training
(too slow, too large, ...) have no accuracy and are left out.

One table per run and settings
------------------------------
A table depends on its *settings* (``feature_settings``): the encoding and its options, and for
the proxy encodings (zcp, graf_zcp) the seed of the fresh networks and the proxies' batch size
(the batch itself is ``example_batch(batch_size)`` of the run's dataset). A search with a
feature surrogate writes ``<run>/features.csv`` with its own encoder: seed
``derive_seed(run seed, "surrogate")``, batch ``encoding.batch_size`` (``search_settings``).
Next to a table, ``<table>.json`` records its settings (``write_feature_table``). The device the
proxies run on (``encoding.device``, default auto: the job's GPU, else the CPU) is not a setting:
it chooses where a table is computed, not what it holds, so a GPU-made table is reused on a CPU.

``run_features`` (``evaluate.py task=features``) defaults to exactly those settings, so the table
it makes for a run is the search's. It never overwrites a table made with other settings:

* no ``features.csv`` yet: write it (and its ``.json``);
* ``features.csv`` with the same settings: reuse it (``reused``), or, if the archive has gained
  trained candidates since, recompute it with those settings (``updated``);
* ``features.csv`` with other settings, or of unknown origin: keep it and use
  ``features-<encoding>-<digest>.csv`` instead (same rules there);
* a ``features.csv`` without ``.json`` is the search's table if the run's surrogate had an
  encoder and one of its rows recomputes to the same values (then the ``.json`` is added),
  otherwise of unknown origin.

The export copy ``<export_dir>/<dataset>_seed=<seed>.csv`` (with its ``.json``) is written, kept
when identical, updated when it comes from the same run and settings, and otherwise refused
(``FeaturesResult.export_error``): another run or other settings already own that name. Beside it,
``<dataset>_seed=<seed>.strings.csv`` holds the run's architecture strings in the paper's layout
(``arch``, ``arch_long``, ``acc``, ``dataset``, ``seed``, ``id``): the language model's training data
(``surrogates.string_tables``), replaced only by the same run grown longer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from nas.search.archive import read_archive
from nas.search.identity import config_digest, derive_seed, diff_configs
from nas.search.surrogate import SURROGATES
from surrogates.string_tables import (
    STRINGS_SUFFIX,
    TRAINED_STATUSES,
    run_string_table,
    to_paper_layout,
)

FEATURES_FILE = "features.csv"
NUMERIC_ENCODINGS = ("graf", "zcp", "graf_zcp")
ENCODING_CONF = Path(__file__).resolve().parents[1] / "conf" / "encoding"
DEFAULT_BATCH_SIZE = 256
# Encoder options and their defaults (what the encoders do when an option is not given). A run
# recorded before ``fisher_mode`` existed computed fisher with today's "ours" rule.
_GRAF_OPTIONS = {"legacy_output_id": False}
_ZCP_OPTIONS = {"extra": False, "fisher_mode": "foresight"}
OPTION_DEFAULTS = {"graf": _GRAF_OPTIONS, "zcp": _ZCP_OPTIONS, "graf_zcp": {**_GRAF_OPTIONS, **_ZCP_OPTIONS}}
LEGACY_FISHER_MODE = "ours"


class FeatureConflict(ValueError):
    """A feature file exists with other content that must not be overwritten."""


def feature_table(records: list[dict], space, encoder) -> pd.DataFrame:
    rows = [r for r in records if r["status"] in TRAINED_STATUSES]
    frame = encoder.encode_frame([space.parse(r["arch"]) for r in rows])
    frame.insert(0, "id", [r["index"] for r in rows])
    frame["accuracy"] = [r["val_acc"] if r["status"] == "ok" else 0.0 for r in rows]
    return frame


def settings_file(table: str | Path) -> Path:
    """The ``.json`` that records how ``table`` was made."""
    return Path(table).with_suffix(".json")


def feature_settings(encoding: dict, seed: int, legacy: bool = False) -> dict:
    """What a table depends on: ``{"encoding", "options"}`` (+ ``seed``, ``batch_size`` for the
    proxy encodings). ``encoding`` is a resolved ``conf/encoding`` node (``name``, ``batch_size``
    and options; ``None`` values are unset). Unset options take the encoder's default, or with
    ``legacy`` (a recorded run config) the rule such a run used (fisher_mode ``ours``). ``device``
    is dropped: where the proxies run is no part of what the table holds (module doc)."""
    options = {k: v for k, v in encoding.items() if v is not None and k != "device"}
    name = options.pop("name", None)
    if name not in NUMERIC_ENCODINGS:
        raise ValueError(f"encoding {name!r} has no numeric feature table; use one of "
                         f"{', '.join(NUMERIC_ENCODINGS)} (encoding=graf_zcp is the paper's)")
    batch_size = int(options.pop("batch_size", DEFAULT_BATCH_SIZE))
    defaults = dict(OPTION_DEFAULTS[name])
    if legacy and "fisher_mode" in defaults:
        defaults["fisher_mode"] = LEGACY_FISHER_MODE
    options = {**defaults, **options}
    settings = {"encoding": name, "options": dict(sorted(options.items()))}
    if name in ("zcp", "graf_zcp"):
        settings.update(seed=int(seed), batch_size=batch_size)
    return json.loads(json.dumps(settings))  # plain JSON values, comparable with a read .json


def search_settings(experiment: dict) -> dict | None:
    """The settings of the table a search wrote (its surrogate's encoder), or None if it had none."""
    encoding = experiment.get("encoding") or {}
    surrogate = (experiment.get("surrogate") or {}).get("name")
    if surrogate in SURROGATES or encoding.get("name") not in NUMERIC_ENCODINGS:
        return None
    return feature_settings(encoding, derive_seed(experiment["seed"], "surrogate"), legacy=True)


def requested_settings(experiment: dict, encoding: dict | None = None, seed: int | None = None) -> dict:
    """The settings ``task=features`` uses: the search's encoder's, with any non-None value of
    ``encoding`` (a name, an option, ``batch_size``) or ``seed`` replacing the search's.

    Without a name: the run's encoding, or graf_zcp (``conf/encoding/graf_zcp.yaml``) if the run
    had none. Another name than the run's starts from ``conf/encoding/<name>.yaml``. The batch
    size is the run's ``encoding.batch_size`` (every search records one) unless given; the seed is
    ``derive_seed(run seed, "surrogate")`` unless given.
    """
    run_encoding = dict(experiment.get("encoding") or {})
    wanted = {k: v for k, v in (encoding or {}).items() if v is not None}
    name = wanted.pop("name", None)
    if name is None:
        name = run_encoding.get("name") if run_encoding.get("name") in NUMERIC_ENCODINGS else "graf_zcp"
    legacy = name == run_encoding.get("name")
    if legacy:
        base = run_encoding
    else:
        conf = ENCODING_CONF / f"{name}.yaml"
        base = OmegaConf.to_container(OmegaConf.load(conf), resolve=True) if conf.exists() else {"name": name}
        base["batch_size"] = run_encoding.get("batch_size", DEFAULT_BATCH_SIZE)
    merged = {**base, **wanted, "name": name}
    if seed is None:
        seed = derive_seed(experiment["seed"], "surrogate")
    return feature_settings(merged, seed, legacy=legacy)


def write_feature_table(path: str | Path, frame: pd.DataFrame, settings: dict, written_by: str,
                        extra: dict | None = None) -> Path:
    """``frame`` as CSV at ``path`` and its settings in ``<path>.json`` (both atomic)."""
    from nas.logging import atomic_write_text

    path = Path(path)
    atomic_write_text(path, frame.to_csv(index=False))
    write_settings(path, settings, written_by, {"rows": len(frame), **(extra or {})})
    return path


def write_settings(table: str | Path, settings: dict, written_by: str, extra: dict | None = None) -> Path:
    """``<table>.json``: the settings, their digest, who wrote the table and ``extra``."""
    from nas.logging import atomic_write_text

    record = {"settings": settings, "digest": config_digest(settings), "written_by": written_by, **(extra or {})}
    path = settings_file(table)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def read_settings(table: str | Path) -> dict | None:
    path = settings_file(table)
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("settings")


@dataclass
class FeaturesResult:
    table: Path
    action: str                       # wrote | reused | updated
    settings: dict
    exported: Path | None = None
    notes: list[str] = field(default_factory=list)
    export_error: str | None = None   # why the export was refused (the run's table is written)

    def lines(self) -> list[str]:
        digest = config_digest(self.settings)
        out = [*self.notes, f"{self.action} {self.table} ({_describe(self.settings)}; settings {digest})"]
        if self.exported is not None:
            out.append(f"-> {self.exported}")
        return out


def _describe(settings: dict) -> str:
    parts = [settings["encoding"], *(f"{k}={v}" for k, v in settings["options"].items())]
    if "seed" in settings:
        parts += [f"seed={settings['seed']}", f"batch_size={settings['batch_size']}"]
    return " ".join(parts)


class _Encoding:
    """The run's space and, built on first use, the encoder for some settings."""

    def __init__(self, experiment: dict, device: str = "auto"):
        from nas.space import EinSpace

        self.experiment, self.device = experiment, device
        self.space = EinSpace(**{k: v for k, v in experiment["space"].items() if k != "_target_"})
        self._datamodule = None
        self._encoders: dict[str, object] = {}

    def encoder(self, settings: dict):
        key = config_digest(settings)
        if key not in self._encoders:
            from surrogates.encodings import NEEDS_DATA, create_encoder

            name, context = settings["encoding"], None
            if name in NEEDS_DATA:
                datamodule = self._data()
                context = {"space": self.space, "batch": datamodule.example_batch(settings["batch_size"]),
                           "num_classes": datamodule.num_classes, "seed": settings["seed"],
                           "device": self.device}
            try:
                self._encoders[key] = create_encoder(name, context=context, **settings["options"])
            except TypeError as err:  # an option this encoder does not take
                raise ValueError(f"encoding {name}: {err}") from None
        return self._encoders[key]

    def _data(self):
        if self._datamodule is None:
            from hydra.utils import instantiate

            self._datamodule = instantiate(OmegaConf.create(self.experiment["dataset"]))
            self._datamodule.setup()
        return self._datamodule


def _same_rows(frame: pd.DataFrame, expected: pd.DataFrame) -> bool:
    if list(frame.columns) != list(expected.columns):
        return False
    a, b = frame.to_numpy(dtype=np.float64), expected.to_numpy(dtype=np.float64)
    return bool(np.allclose(a, b, rtol=1e-5, atol=1e-12, equal_nan=True))


def _is_search_table(path: Path, settings: dict, encoding: _Encoding, records: list[dict]) -> bool:
    """Does ``path`` (no ``.json``) hold the search's table? Recompute one row and compare."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return False
    if table.empty or "id" not in table.columns:
        return False
    features = table.drop(columns=[c for c in ("id", "accuracy") if c in table.columns])
    finite = np.isfinite(features.to_numpy(dtype=np.float64, na_value=np.nan)).all(axis=1)
    row = int(np.argmax(finite)) if finite.any() else 0
    by_index = {r["index"]: r for r in records}
    record = by_index.get(int(table["id"].iloc[row]))
    if record is None:
        return False
    probe = feature_table([record], encoding.space, encoding.encoder(settings))
    return _same_rows(table.iloc[[row]].reset_index(drop=True), probe)


def _run_info(experiment: dict) -> dict:
    return {"run": {"dataset": experiment["dataset"]["name"], "seed": experiment["seed"]}}


def _trained_ids(records: list[dict]) -> list[int]:
    return [int(r["index"]) for r in records if r["status"] in TRAINED_STATUSES]


def _table_ids(path: Path) -> list[int] | None:
    try:
        return [int(i) for i in pd.read_csv(path, usecols=["id"])["id"]]
    except (OSError, ValueError, KeyError, pd.errors.ParserError):
        return None


def run_features(run_dir: str | Path, encoding: dict | None = None, export_dir: str | Path | None = None,
                 seed: int | None = None, device: str = "auto") -> FeaturesResult:
    """The feature table of a (finished or running) search's archive; see the module doc.

    ``encoding``/``seed``: ``None`` values keep the search's settings (``requested_settings``).
    ``device``: where the proxies run (``encoding.device``: auto, cpu, cuda:<k>).
    With ``export_dir`` the table is also copied to ``<export_dir>/<dataset>_seed=<seed>.csv``
    (the transfer layout); a different table already there is left alone and the reason is in
    ``export_error``.
    """
    run_dir = Path(run_dir)
    experiment_file = run_dir / "experiment.json"
    if not experiment_file.exists():
        raise FileNotFoundError(f"{run_dir} is not a search run directory (no experiment.json)")
    experiment = json.loads(experiment_file.read_text())
    settings = requested_settings(experiment, encoding, seed)
    records = read_archive(run_dir / "archive.jsonl")
    encoding_ctx = _Encoding(experiment, device)
    notes: list[str] = []

    table = run_dir / FEATURES_FILE
    existing = _settings_of_default_table(table, experiment, encoding_ctx, records, settings, notes)
    if table.exists() and existing != settings:
        reason = ("of unknown origin (no .json, and not the search's table)" if existing is None else
                  "made with other settings: " + "; ".join(diff_configs(existing, settings)))
        table = run_dir / f"features-{settings['encoding']}-{config_digest(settings)}.csv"
        notes.append(f"kept {run_dir / FEATURES_FILE}: {reason}; this table goes to {table.name}")
        existing = read_settings(table) if table.exists() else None
        if table.exists() and existing != settings:  # a foreign file under our digest name
            raise FeatureConflict(f"{table} exists with other or unknown settings; move it away and rerun")

    trained = _trained_ids(records)
    if table.exists() and existing == settings and _table_ids(table) == trained:
        action = "reused"
    else:
        action = "updated" if table.exists() else "wrote"
        frame = feature_table(records, encoding_ctx.space, encoding_ctx.encoder(settings))
        write_feature_table(table, frame, settings, "evaluate.py task=features", _run_info(experiment))
    result = FeaturesResult(table, action, settings, notes=notes)
    if export_dir is not None:
        try:
            result.exported = _export(table, run_dir, experiment, settings, Path(export_dir))
        except FeatureConflict as err:
            result.export_error = str(err)
    return result


def _settings_of_default_table(table: Path, experiment: dict, encoding: _Encoding, records: list[dict],
                               settings: dict, notes: list[str]) -> dict | None:
    """The settings ``<run>/features.csv`` was made with; None if it is missing or unknown."""
    if not table.exists():
        return None
    recorded = read_settings(table)
    if recorded is not None:
        return recorded
    searched = search_settings(experiment)
    if searched is None:
        return None
    if searched != settings:
        return searched  # not the one we want either way; no need to recompute a row to check
    if not _is_search_table(table, searched, encoding, records):
        return None
    write_settings(table, searched, "search (checked by evaluate.py task=features: a row recomputes to the "
                   "same values)", {"rows": len(_table_ids(table) or []), **_run_info(experiment)})
    notes.append(f"{table.name} is the search's table (a row recomputes to the same values); recorded its "
                 f"settings in {settings_file(table).name}")
    return searched


def _export(table: Path, run_dir: Path, experiment: dict, settings: dict, export_dir: Path) -> Path:
    from nas.logging import atomic_write_text

    target = export_dir / f"{experiment['dataset']['name']}_seed={experiment['seed']}.csv"
    data = table.read_text()
    source = str(run_dir.resolve())
    if target.exists() and target.read_text() != data:
        record = json.loads(settings_file(target).read_text()) if settings_file(target).exists() else {}
        if record.get("source") != source or record.get("settings") != settings:
            owner = f"run {record['source']}" if record.get("source") else "an unknown run"
            raise FeatureConflict(
                f"{target} already holds another table (from {owner}"
                f"{'' if record.get('settings') in (None, settings) else ', other settings'}); "
                f"move it away or pass export_dir=<another folder>")
    if not target.exists() or target.read_text() != data:
        atomic_write_text(target, data)
    write_settings(target, settings, "evaluate.py task=features (export)", {"source": source, "table": table.name})
    _export_strings(run_dir, target.with_name(target.name[: -len(".csv")] + STRINGS_SUFFIX))
    return target


def _export_strings(run_dir: Path, target: Path) -> None:
    """The run's architecture strings in the paper's layout next to its feature file (what a language
    model trains on). An existing file is replaced only by the same run grown longer."""
    from nas.logging import atomic_write_text

    dataset, seed, table = run_string_table(run_dir)
    data = to_paper_layout(table, dataset, seed).to_csv(index=False)
    if target.exists() and target.read_text() != data:
        old = pd.read_csv(target)
        same_run = (len(old) <= len(table) and list(old.get("arch_long", [])) == list(table["arch_long"][: len(old)])
                    and list(old.get("id", [])) == list(table["id"][: len(old)]))
        if not same_run:
            raise FeatureConflict(f"{target} already holds another run's architecture strings; move it away or "
                                  "pass export_dir=<another folder>")
    if not target.exists() or target.read_text() != data:
        atomic_write_text(target, data)


def features_task(cfg, out_dir: Path, logger) -> None:
    """``evaluate.py task=features``: ``run_features`` on ``cfg.run`` with the settings ``cfg`` sets."""
    if not cfg.run:
        raise ValueError("task=features needs run=<search run dir>")
    encoding = OmegaConf.to_container(cfg.encoding, resolve=True) if cfg.get("encoding") is not None else None
    device = (encoding or {}).pop("device", None) or "auto"
    seed = cfg.get("features_seed")
    result = run_features(cfg.run, encoding, cfg.export_dir, seed=None if seed is None else int(seed),
                          device=device)
    for line in result.lines():
        print(line)
    if result.export_error:
        raise ValueError(result.export_error)
