"""Encoding and predictor benchmarks of the surrogates issue, one command (one thread each).

    OMP_NUM_THREADS=1 python bench/encodings.py            # GRAF, the 7 proxies, every predictor

Runs, in turn: bench/encodings_graf.py (ms per architecture, 200 samples on 3x28x28, plus a deeply
nested branching(8) tree), bench/encodings_zcp.py (the proxies against 7 forward+backward passes
of the same batch, on wideresnet16_4 and 20 samples at batch 256) and bench/predictors.py (fit and
batched predict on 1,000 x 392 features). Each can also be run alone with its own options.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in ("encodings_graf.py", "encodings_zcp.py", "predictors.py"):
        print(f"\n===== {script} =====", flush=True)
        subprocess.run([sys.executable, str(HERE / script)], check=True)
