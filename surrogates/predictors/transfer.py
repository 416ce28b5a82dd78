"""``tr_rf``: a random forest fitted on other datasets' search runs plus the current run.

The transfer surrogate of the paper (seed_system §6.5). On ``fit(X, y)``:

1. Every feature file ``<transfer_dir>/<dataset>_seed=<s>.csv`` of a dataset *other than*
   ``dataset`` is read (the target's own files are never opened). ``source_datasets`` restricts
   the sources further; by default every other dataset found is used. A dataset named there (the
   target aside) without any file is an error naming it (``missing_sources``): a run started
   before its sources finished fails at once instead of learning from fewer datasets.
2. Each file and, separately, the current run's ``(X, y)`` lose their rows with accuracy <= 0 (or
   non-finite), and each has its targets normalised on its own with ``policy`` (default
   ``minmax``; ``ecdf``/``percentile`` and ``raw`` also work).
3. Everything is stacked on the current run's feature names (a file lacking one raises, naming the
   file and the columns); a file's extra columns are ignored. If ``X`` is a plain array, the first
   transfer file's feature columns name it (the widths must agree).
4. A ``RandomForestRegressor(random_state=seed)`` is fitted on the pool.

Predictions are on the normalised scale, which is all a ranking needs. The dataset is a constructor
argument, injected by the config (``dataset: ${dataset.name}``), never read from the command line
(the original parsed ``sys.argv`` at import time, §10.14). The transfer files are read on the first
fit and kept for the refits that follow. ``fit(None, None)`` fits on the transfer data alone (the
"no-train" mode of §8.4). ``save`` stores the pooled training matrix, so a saved ``tr_rf`` loads and
predicts without the transfer directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

from surrogates.normalisation import canonical_policy, normalise
from surrogates.predictors.base import Predictor, RefitOnLoad, as_feature_matrix, register
from surrogates.predictors.tables import (
    feature_columns,
    find_feature_files,
    read_feature_table,
    stack_sources,
    usable_rows,
)

__all__ = ["TransferRF"]


@register("tr_rf")
class TransferRF(RefitOnLoad, Predictor):
    """Random forest on the other datasets' feature files plus the current run (normalised per source)."""

    def __init__(
        self,
        transfer_dir: str | Path | None = None,
        dataset: str | None = None,
        policy: str = "minmax",
        seed: int = 0,
        n_jobs: int = 1,
        source_datasets: list[str] | None = None,
        drop_zero: bool = True,
        **rf_params: Any,
    ):
        if transfer_dir is None or dataset is None:
            raise ValueError("tr_rf needs transfer_dir (the feature files) and dataset (the target, left out)")
        super().__init__(
            seed=seed,
            n_jobs=n_jobs,
            transfer_dir=str(transfer_dir),
            dataset=str(dataset),
            policy=canonical_policy(policy),
            source_datasets=None if source_datasets is None else [str(d) for d in source_datasets],
            drop_zero=bool(drop_zero),
            **rf_params,
        )
        self._tables: list[tuple[Path, pd.DataFrame]] | None = None
        self.used_files_: list[str] = []

    def missing_sources(self) -> list[str]:
        """The datasets named in ``source_datasets`` (the target aside) without any feature file.

        Named sources are a promise (a pipeline lists the sweep's datasets): every one must have
        at least one ``<dataset>_seed=<s>.csv``, or the surrogate would silently learn from fewer."""
        p = self.params
        named = [d for d in p["source_datasets"] or [] if d != p["dataset"]]
        if not named:
            return []
        try:
            have = {ds for ds, _seed, _path in find_feature_files(p["transfer_dir"])}
        except FileNotFoundError:
            have = set()
        return [d for d in named if d not in have]

    def source_files(self) -> list[Path]:
        """The feature files this predictor trains on (the target dataset's excluded). Every
        dataset named in ``source_datasets`` must have one (``missing_sources``)."""
        p = self.params
        missing = self.missing_sources()
        if missing:
            folder = Path(p["transfer_dir"]).expanduser().absolute()
            raise FileNotFoundError(
                f"tr_rf for target {p['dataset']!r} is missing the feature files of source dataset(s) "
                f"{', '.join(missing)}: no {' or '.join(str(folder / f'{d}_seed=<seed>.csv') for d in missing)}"
            )
        wanted = None if p["source_datasets"] is None else set(p["source_datasets"])
        files = [
            path
            for ds, _seed, path in find_feature_files(p["transfer_dir"])
            if ds != p["dataset"] and (wanted is None or ds in wanted)
        ]
        if not files:
            raise FileNotFoundError(
                f"no transfer feature files for target {p['dataset']!r} in {p['transfer_dir']}: every "
                f"<dataset>_seed=<seed>.csv there belongs to the target or to no selected source dataset"
            )
        return files

    def check_sources(self) -> list[Path]:
        """The source files, or ``FileNotFoundError`` naming the files expected (full paths) and
        the command that makes them. A search calls this before anything trains; ``fit`` reads
        the files later (a saved predictor loads without them)."""
        p = self.params
        if self.missing_sources():
            try:
                self.source_files()
            except FileNotFoundError as err:
                raise FileNotFoundError(
                    f"{err}. tr_rf runs once its sources have finished: search those datasets first and export "
                    f"their features (the pipeline's phases 1-2, e.g. bash multirun_sweeps/mini.sh), or make each "
                    f"file with: python evaluate.py task=features \"run='<its run dir>'\" export_dir="
                    f"{Path(p['transfer_dir']).expanduser().absolute()}"
                ) from None
        try:
            return self.source_files()
        except FileNotFoundError as err:
            folder = Path(p["transfer_dir"]).expanduser().absolute()
            if p["source_datasets"]:
                wanted = [d for d in p["source_datasets"] if d != p["dataset"]]
                expected = (f"one of {', '.join(str(folder / f'{d}_seed=<seed>.csv') for d in wanted)} "
                            "(surrogate.source_datasets)") if wanted else \
                    f"a source dataset other than {p['dataset']!r} in surrogate.source_datasets"
            else:
                expected = f"{folder}/<dataset>_seed=<seed>.csv for a dataset other than {p['dataset']!r}"
            raise FileNotFoundError(
                f"{err}. tr_rf learns from finished searches on other datasets and expects {expected} "
                f"(or set surrogate.transfer_dir to a folder that holds such files). Make one per "
                f"finished search on another dataset with: python evaluate.py task=features "
                f"\"run='<its run dir, e.g. outputs/search/multnist/surrogate_evolution-rf-graf_zcp/seed=0>'\" "
                f"export_dir={folder}"
            ) from None

    def _transfer_tables(self) -> list[tuple[Path, pd.DataFrame]]:
        if self._tables is None:
            self._tables = [(path, read_feature_table(path)) for path in self.source_files()]
        return self._tables

    def fit(self, X: Any = None, y: Any = None) -> TransferRF:
        p = self.params
        tables = self._transfer_tables()
        if X is None:
            arr, names = np.zeros((0, 0)), None
            target = np.zeros(0)
        else:
            arr, names = as_feature_matrix(X)
            target = np.asarray(y, dtype=float).ravel()
            if arr.shape[0] != target.size:
                raise ValueError(f"X has {arr.shape[0]} rows but y has {target.size} targets")
        if names is None:
            names = feature_columns(tables[0][1])
            if X is not None and arr.shape[1] != len(names):
                raise ValueError(
                    f"X has {arr.shape[1]} columns but the transfer file {tables[0][0]} has {len(names)} "
                    f"feature columns; pass a DataFrame with named columns"
                )
        pool_X, pool_y = stack_sources(
            [t for _, t in tables], names, p["policy"], p["drop_zero"], labels=[str(f) for f, _ in tables]
        )
        keep = usable_rows(target, p["drop_zero"]) if target.size else np.zeros(0, dtype=bool)
        cur_X = arr[keep] if target.size else np.zeros((0, len(names)))
        cur_y = normalise(target[keep], p["policy"]) if target.size else np.zeros(0)
        all_X = np.vstack([as_feature_matrix(pool_X)[0], cur_X])
        all_y = np.concatenate([pool_y, cur_y])
        if all_y.size == 0:
            raise ValueError("tr_rf: no usable training rows (all accuracies zero or missing)")
        self._fit(all_X, all_y)
        self.feature_names_ = list(names)
        self.n_features_ = len(names)
        self.n_transfer_rows_ = int(pool_y.size)
        self.n_current_rows_ = int(cur_y.size)
        self.used_files_ = [str(f) for f, _ in tables]
        self.is_fitted = True
        return self

    def _fit_arrays(self, X, y):
        rf_params = {
            k: v
            for k, v in self.params.items()
            if k not in ("transfer_dir", "dataset", "policy", "source_datasets", "drop_zero")
        }
        self.model = RandomForestRegressor(random_state=self.seed, n_jobs=self.n_jobs, **rf_params).fit(X, y)

    def _predict(self, X):
        return self.model.predict(X)
