"""The predictor interface, the name registry, input checks and the on-disk format.

A predictor maps a feature matrix to one score per row (higher = better predicted accuracy):
``fit(X, y)``, ``predict(X) -> np.ndarray`` (one batched call for any number of rows), and
``save(path)`` / ``Predictor.load(path)``.

Inputs. ``X`` is a 2-D numpy array or a pandas DataFrame. With a DataFrame the column names are
kept (``feature_names_``) and checked on ``predict``: the same set of names is required (the order
may differ; columns are re-ordered by name), a missing or unexpected column raises ``ValueError``
naming it. A plain array is checked only for its width. Values are read as float64 and clipped to
the float32 range, as the original's transfer scripts do for synflow (seed_system §8.2): tree
libraries work in float32 and reject values beyond it, and ±inf from an overflowing zero-cost proxy
becomes ±float32 max. NaN is kept (the tree models handle it; the linear models and the MLP impute
it with the training median). Non-finite targets raise: the caller decides what a failed candidate
is worth.

Saving, without pickle. ``save(path)`` creates the directory ``path`` with ``predictor.json``
(registry name, constructor parameters, seed, feature names, small state such as an RNG state)
plus what the model needs:

- xgb family: the booster in XGBoost's native JSON format (``model.json``);
- lgbm family: the booster in LightGBM's native text format (``model.txt``);
- sklearn models (rf, mlp, linear, ridge, and tr_rf's forest): the training matrix and targets
  (``training_data.npz``, read back with ``allow_pickle=False``), refitted on load with the saved
  parameters and seed. With one thread and the same library versions the refit is bit-identical,
  so the loaded predictor predicts exactly what the saved one did; across library versions or
  BLAS builds the MLP may differ in the last bits. This is slower to load than a pickle but cannot
  execute code from a file and does not break when scikit-learn changes its internals;
- ensembles: every distinct member saved the same way in ``members/NN/``.

Registry: ``register(name)`` decorates a class; ``create_predictor(name, seed=..., **kw)`` calls
``cls(seed=seed, **kw)``, so the keys of ``conf/surrogate/<name>.yaml`` (less ``name``,
``_target_``, ``_partial_``) are exactly constructor keyword arguments.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = [
    "Predictor",
    "register",
    "list_predictors",
    "create_predictor",
    "predictor_class",
    "load_predictor",
    "as_feature_matrix",
    "FLOAT32_MAX",
]

FORMAT_VERSION = 1
META_FILE = "predictor.json"
FLOAT32_MAX = float(np.finfo(np.float32).max)

_REGISTRY: dict[str, type[Predictor]] = {}


def register(name: str):
    """Class decorator: file the class under ``name`` (also sets ``cls.name``)."""

    def decorate(cls: type[Predictor]) -> type[Predictor]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"predictor name {name!r} is already registered to {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_predictors() -> list[str]:
    """Every registered predictor name, sorted."""
    return sorted(_REGISTRY)


def predictor_class(name: str) -> type[Predictor]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown predictor {name!r}; registered: {', '.join(list_predictors())}"
        ) from None


def create_predictor(name: str, seed: int = 0, **kwargs: Any) -> Predictor:
    """A fresh, unfitted predictor: ``predictor_class(name)(seed=seed, **kwargs)``."""
    return predictor_class(name)(seed=seed, **kwargs)


def load_predictor(path: str | Path) -> Predictor:
    """The predictor saved in directory ``path`` (whatever its class)."""
    return Predictor.load(path)


def as_feature_matrix(X: Any) -> tuple[np.ndarray, list[str] | None]:
    """``X`` as a clipped float64 matrix, and its column names when it is a DataFrame."""
    names = None
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicated feature columns: {dup[:10]}")
        arr = X.to_numpy(dtype=float)
    else:
        arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x features), got shape {arr.shape}")
    return np.clip(arr, -FLOAT32_MAX, FLOAT32_MAX), names


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _describe(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class Predictor:
    """Base class. Subclasses implement ``_fit(X, y)`` and ``_predict(X)`` on float matrices.

    Constructor arguments are kept in ``self.params`` (besides ``seed`` and ``n_jobs``) so that
    ``get_params`` returns exactly what rebuilds an equivalent unfitted predictor.
    """

    name: ClassVar[str] = "base"
    needs_fit: ClassVar[bool] = True
    # True when the scores ignore the features (the random baseline): a search then needs no encoder.
    input_independent: ClassVar[bool] = False

    def __init__(self, seed: int = 0, n_jobs: int = 1, **params: Any):
        self.seed = int(seed)
        self.n_jobs = int(n_jobs)
        self.params = dict(params)
        self.feature_names_: list[str] | None = None
        self.n_features_: int | None = None
        self.is_fitted = False

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "n_jobs": self.n_jobs, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any) -> Predictor:
        arr, names = as_feature_matrix(X)
        target = np.asarray(y, dtype=float).ravel()
        if arr.shape[0] != target.size:
            raise ValueError(f"X has {arr.shape[0]} rows but y has {target.size} targets")
        if target.size == 0:
            raise ValueError(f"{self.name}: cannot fit on zero rows")
        if not np.isfinite(target).all():
            bad = int((~np.isfinite(target)).sum())
            raise ValueError(f"{self.name}: {bad} non-finite target(s); drop or replace them first")
        self._fit(arr, target)
        self.feature_names_ = names
        self.n_features_ = arr.shape[1]
        self.is_fitted = True
        return self

    def predict(self, X: Any) -> np.ndarray:
        if self.needs_fit and not self.is_fitted:
            raise RuntimeError(f"{self.name}: predict called before fit")
        arr = self._check_predict_input(X)
        if arr.shape[0] == 0:
            return np.zeros(0)
        return np.asarray(self._predict(arr), dtype=float).reshape(-1)

    def _check_predict_input(self, X: Any) -> np.ndarray:
        if isinstance(X, pd.DataFrame) and self.feature_names_ is not None:
            given = [str(c) for c in X.columns]
            given_set, known_set = set(given), set(self.feature_names_)
            missing = [n for n in self.feature_names_ if n not in given_set]
            extra = [n for n in given if n not in known_set]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"missing {len(missing)} column(s) seen in fit: {_describe(missing)}")
                if extra:
                    parts.append(f"{len(extra)} column(s) not seen in fit: {_describe(extra)}")
                raise ValueError(f"{self.name}: feature columns differ from fit: " + "; ".join(parts))
            if given != self.feature_names_:
                X = X.set_axis(given, axis=1)[self.feature_names_]
        arr, _ = as_feature_matrix(X)
        if self.n_features_ is not None and arr.shape[1] != self.n_features_:
            raise ValueError(
                f"{self.name}: X has {arr.shape[1]} features, the model was fitted on {self.n_features_}"
            )
        return arr

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Small JSON-able state that is not the fitted model (e.g. an RNG state): kept in
        ``predictor.json`` and in a search's checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def _save_model(self, directory: Path) -> None:
        """Write the fitted model's files into ``directory`` (called only when fitted)."""
        raise NotImplementedError

    def _load_model(self, directory: Path) -> None:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write this predictor to the directory ``path`` (created if needed); returns it."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        if self.is_fitted:
            self._save_model(directory)
        meta = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "params": _jsonable(self.get_params()),
            "feature_names": self.feature_names_,
            "n_features": self.n_features_,
            "is_fitted": self.is_fitted,
            "state": _jsonable(self.state_dict()),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """Rebuild the predictor saved by ``save(path)``; raises if it is not a ``cls``."""
        directory = Path(path)
        meta_file = directory / META_FILE
        if not meta_file.is_file():
            raise FileNotFoundError(f"no saved predictor at {directory} (expected {meta_file})")
        meta = json.loads(meta_file.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_file}: unsupported format_version {meta.get('format_version')!r}")
        klass = predictor_class(meta["name"])
        if not issubclass(klass, cls):
            raise TypeError(f"{directory} holds a {klass.__name__}, not a {cls.__name__}")
        obj = klass(**meta["params"])
        obj.load_state_dict(meta.get("state") or {})
        if meta["is_fitted"]:
            obj._load_model(directory)
            obj.is_fitted = True
        obj.feature_names_ = meta["feature_names"]
        obj.n_features_ = meta["n_features"]
        return obj


class RefitOnLoad:
    """Mixin for sklearn models: save the training arrays, refit deterministically on load.

    The class keeps the arrays its model was fitted on in ``_train_X``/``_train_y`` and implements
    ``_fit_arrays(X, y)``, which builds and fits the model from them.
    """

    DATA_FILE = "training_data.npz"
    _train_X: np.ndarray
    _train_y: np.ndarray

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._fit_arrays(X, y)
        self._train_X, self._train_y = X, y

    def _save_model(self, directory: Path) -> None:
        np.savez(directory / self.DATA_FILE, X=self._train_X, y=self._train_y)

    def _load_model(self, directory: Path) -> None:
        with np.load(directory / self.DATA_FILE, allow_pickle=False) as data:
            X, y = data["X"], data["y"]
        self._fit_arrays(X, y)
        self._train_X, self._train_y = X, y
