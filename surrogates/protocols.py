"""Surrogate evaluation protocols on feature tables (seed_system §8.2-8.4), as pure functions.

A feature table is a pandas DataFrame of one search run: an ``accuracy`` column, the feature
columns, optionally ``id``; rows in search order (the files of ``surrogates.predictors.tables``).
A *predictor factory* is a zero-argument callable returning a fresh, unfitted predictor (e.g.
``lambda: create_predictor("rf", seed=42)``) or simply a registered name.

Conventions shared by every protocol:

- Training sources (a run's prefix, a transfer file, a source dataset's run) lose their rows with
  accuracy <= 0 (failed candidates) and are normalised *per source* with ``policy``
  (``surrogates.normalisation``: raw, minmax, ecdf). ``drop_zero=False`` keeps the zeros.
- Test rows keep their zero accuracies ("we would still get them in search", §8.2) and are scored
  against the *raw* accuracy. Rank metrics do not care about the scale; MAE and RMSE are only in
  accuracy units when ``policy="raw"``.
- The feature columns are those of the table being evaluated (``in_run_windows``) or of the first
  training source; every other table must contain them (else ``ValueError`` naming the columns).
- Every protocol returns a DataFrame with ``n_train``, ``n_test`` and the metrics of
  ``surrogates.metrics.rank_metrics`` (kendall_tau, spearman, pearson, mae, rmse, precision_at_10).

``results_table`` pivots such rows into the paper's datasets x predictors table
(``nas.markdown.to_markdown`` prints it).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from surrogates.metrics import rank_metrics
from surrogates.predictors import Predictor, create_predictor
from surrogates.predictors.tables import TARGET_COLUMN, feature_columns, stack_sources

__all__ = [
    "DEFAULT_LIMITS",
    "in_run_windows",
    "one_to_one",
    "leave_one_out",
    "on_the_fly",
    "results_table",
]

DEFAULT_LIMITS = tuple(range(100, 1000, 100))  # LIMITS of evaluate_transfer.py (§8.4)

PredictorFactory = Callable[[], Predictor] | str
Tables = pd.DataFrame | Sequence[pd.DataFrame] | Mapping[Any, pd.DataFrame]


def _make(factory: PredictorFactory) -> Predictor:
    return create_predictor(factory) if isinstance(factory, str) else factory()


def _frames(tables: Tables | None, prefix: str = "") -> tuple[list[pd.DataFrame], list[str]]:
    """A table, a list of tables or a {label: table} mapping, as (frames, labels)."""
    if tables is None:
        return [], []
    if isinstance(tables, pd.DataFrame):
        return [tables], [prefix or "table"]
    if isinstance(tables, Mapping):
        return list(tables.values()), [f"{prefix}{k}" for k in tables]
    frames = list(tables)
    return frames, [f"{prefix}table {i}" for i in range(len(frames))]


def _score(model: Predictor, test: pd.DataFrame, columns: list[str], label: str) -> dict[str, float]:
    missing = [c for c in columns if c not in test.columns]
    if missing:
        raise ValueError(f"{label}: missing feature column(s) {', '.join(missing[:10])}")
    pred = model.predict(test[columns])
    return rank_metrics(pred, test[TARGET_COLUMN].to_numpy(dtype=float))


def in_run_windows(
    frame: pd.DataFrame,
    predictor_factory: PredictorFactory,
    limits: Iterable[int] = DEFAULT_LIMITS,
    test_size: int = 100,
    transfer: Tables | None = None,
    policy: str | None = "raw",
    train_current: bool = True,
    drop_zero: bool = True,
) -> pd.DataFrame:
    """Simulated search (§8.4): for each limit L, fit on rows [0, L) and test on [L, L + test_size).

    ``transfer`` (tables of other runs) is added to every training set, each table a source of its
    own. ``train_current=False`` is the no-train mode: one fit on the transfer tables alone, tested
    on every window. Windows with no test row (L beyond the table) are left out; the last window
    may be shorter than ``test_size``. One row per limit: ``limit``, ``n_train``, ``n_test``, metrics.
    """
    if test_size < 1:
        raise ValueError(f"test_size must be >= 1, got {test_size}")
    columns = feature_columns(frame)
    extra, extra_labels = _frames(transfer, prefix="transfer ")
    fixed: tuple[Predictor, int] | None = None
    if not train_current:
        if not extra:
            raise ValueError("train_current=False needs transfer tables to train on")
        X, y = stack_sources(extra, columns, policy, drop_zero, extra_labels)
        fixed = (_make(predictor_factory).fit(X, y), int(y.size))
    rows = []
    for limit in limits:
        limit = int(limit)
        if limit < 0:
            raise ValueError(f"limits must be >= 0, got {limit}")
        test = frame.iloc[limit : limit + test_size]
        if len(test) == 0:
            continue
        if fixed is None:
            X, y = stack_sources([*extra, frame.iloc[:limit]], columns, policy, drop_zero,
                                 [*extra_labels, f"current run rows [0, {limit})"])
            if y.size == 0:
                raise ValueError(f"limit {limit}: no usable training rows")
            model, n_train = _make(predictor_factory).fit(X, y), int(y.size)
        else:
            model, n_train = fixed
        metrics = _score(model, test, columns, "current run")
        rows.append({"limit": limit, "n_train": n_train, "n_test": len(test), **metrics})
    return pd.DataFrame(rows)


def one_to_one(
    source: Tables,
    target: Tables,
    predictor_factory: PredictorFactory,
    policy: str | None = "raw",
    drop_zero: bool = True,
) -> pd.DataFrame:
    """Fit on the source run(s), test on the target run(s) with zero-accuracy rows kept (§8.2).

    Several source tables (e.g. ``cifar10all``: every cifar10 seed but 0 and 4) are pooled, each
    normalised on its own; several target tables are concatenated. One row.
    """
    sources, labels = _frames(source, prefix="source ")
    targets, _ = _frames(target, prefix="target ")
    if not sources or not targets:
        raise ValueError("one_to_one needs at least one source and one target table")
    columns = feature_columns(sources[0])
    X, y = stack_sources(sources, columns, policy, drop_zero, labels)
    if y.size == 0:
        raise ValueError("one_to_one: the source has no usable training rows")
    model = _make(predictor_factory).fit(X, y)
    test = pd.concat(targets, ignore_index=True)
    return pd.DataFrame([{"n_train": int(y.size), "n_test": len(test), **_score(model, test, columns, "target")}])


def leave_one_out(
    frames_by_dataset: Mapping[str, Tables],
    target: str | Sequence[str] | None,
    predictor_factory: PredictorFactory,
    policy: str | None = "minmax",
    drop_zero: bool = True,
    per_file: bool = False,
) -> pd.DataFrame:
    """Train on every table of every other dataset, test on the target's tables (§8.3).

    ``frames_by_dataset`` maps a dataset name to its runs (a table, a list, or ``{seed: table}`` as
    returned by ``load_feature_archive``). ``target`` is one dataset, several, or ``None`` for each
    dataset in turn (one row each). The target's runs are concatenated and tested with their zero
    rows kept; ``per_file=True`` scores each run separately instead (an extra ``run`` column).
    """
    datasets = list(frames_by_dataset)
    if target is None:
        targets = datasets
    elif isinstance(target, str):
        targets = [target]
    else:
        targets = list(target)
    rows = []
    for name in targets:
        if name not in frames_by_dataset:
            raise ValueError(f"target dataset {name!r} is not among {datasets}")
        sources, labels = [], []
        for other in datasets:
            if other != name:
                frames, frame_labels = _frames(frames_by_dataset[other], prefix=f"{other} ")
                sources += frames
                labels += frame_labels
        if not sources:
            raise ValueError(f"leave_one_out: no dataset besides {name!r} to train on")
        columns = feature_columns(sources[0])
        X, y = stack_sources(sources, columns, policy, drop_zero, labels)
        model = _make(predictor_factory).fit(X, y)
        test_frames, test_labels = _frames(frames_by_dataset[name])
        if per_file:
            keys = list(frames_by_dataset[name]) if isinstance(frames_by_dataset[name], Mapping) else test_labels
            for key, test in zip(keys, test_frames, strict=True):
                rows.append({"dataset": name, "run": key, "n_train": int(y.size), "n_test": len(test),
                             **_score(model, test, columns, f"{name} {key}")})
        else:
            test = pd.concat(test_frames, ignore_index=True)
            rows.append({"dataset": name, "n_train": int(y.size), "n_test": len(test),
                         **_score(model, test, columns, name)})
    return pd.DataFrame(rows)


def on_the_fly(
    frame: pd.DataFrame,
    predictor_factory: PredictorFactory,
    chunk_size: int = 100,
    finetune: bool = True,
    drop_zero: bool = True,
) -> pd.DataFrame:
    """The paper's on-the-fly simulation (seed_system §7.4): one run in search order, cut into
    chunks of ``chunk_size`` (a population); for each chunk i but the last, fit the *same* model
    on chunk i (zero rows dropped) and score it on chunk i+1 (zero rows kept).

    A language model's fits continue from its current weights (pretrained, or a checkpoint), as
    the paper's did; a tabular predictor is refitted on the chunk alone. ``finetune=False`` only
    predicts: the predictor must be usable unfitted (a fine-tuned checkpoint). One row per scored
    chunk: ``chunk`` (its index, from 1), ``n_train``, ``n_test``, metrics."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    columns = feature_columns(frame)
    chunks = [frame.iloc[start:start + chunk_size] for start in range(0, len(frame), chunk_size)]
    model = _make(predictor_factory)
    if not finetune and model.needs_fit and not model.is_fitted and getattr(model, "input_kind", "") != "strings":
        raise ValueError(f"{model.name} predicts nothing before a fit; on_the_fly with finetune=false needs a "
                         "fine-tuned language model (checkpoint=<dir>)")
    rows, n_train = [], 0
    for i in range(len(chunks) - 1):
        if finetune:
            X, y = stack_sources([chunks[i]], columns, "raw", drop_zero, [f"chunk {i}"])
            if y.size:
                model.fit(X, y)
                n_train = int(y.size)
        metrics = _score(model, chunks[i + 1], columns, f"chunk {i + 1}")
        rows.append({"chunk": i + 1, "n_train": n_train, "n_test": len(chunks[i + 1]), **metrics})
    return pd.DataFrame(rows)


def results_table(
    rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    index: str = "dataset",
    columns: str = "predictor",
    value: str = "kendall_tau",
    average: bool = False,
) -> pd.DataFrame:
    """Rows of results pivoted to ``index`` x ``columns`` cells of ``value`` (mean over repeats).

    Rows and columns keep their order of first appearance. ``average=True`` appends a ``mean`` row
    (the mean over the index, NaN cells skipped), like the paper's average line.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    for col in (index, columns, value):
        if col not in frame.columns:
            raise ValueError(f"results_table: no column {col!r} in {list(frame.columns)}")
    table = frame.pivot_table(index=index, columns=columns, values=value, aggfunc="mean", sort=False)
    table = table.reindex(index=pd.unique(frame[index]), columns=pd.unique(frame[columns]))
    table.columns.name = columns
    table.index.name = index
    if average:
        table.loc["mean"] = table.mean(axis=0, skipna=True)
    return table
