"""One prepared check for when a GPU is lent (issue 13): the numbers a GPU search depends on,
in under 8 minutes on one H100/H200. Ratios are against baselines measured in the same process.

    python bench/gpu_check.py [--out report.json]   # on the GPU (auto device)
    python bench/gpu_check.py --smoke               # reduced sizes: runs on a 2-core CPU in < 2 min

(a) resnet18 (the space's seed) on AddNIST-shaped random data (3x28x28, 20 classes; 5000 train /
    1000 valid, not AddNIST's 45,000, so 16 epochs fit): seconds per candidate with the search
    trainer at 16 epochs, against 16 x its median epoch (the training itself), and projected to
    45,000 training samples.
(b) the fused and the literal form of einspace's convolutions (``space.build(..., fuse=...)``):
    forward+backward seconds of resnet18 at batch 256, and whether both compute the same output
    (max |diff| / max |out|) under the trainer's ``tf32: true`` and in full float32.
(c) the zero-cost proxies (``ZCPEncoder``, batch 256) on the GPU against the CPU: seconds per
    architecture for resnet18 and a few sampled ones, and the largest relative difference.
(d) candidates per minute of ``search.py`` with 1, 2 and 4 workers on one GPU (mini_addnist, 16
    epochs, random surrogate, a small equal budget each); "not available" if the search refuses
    the worker options.

Each section runs on its own (a failure is reported, the rest go on), in the order a, b, d, c:
(d) is the number a GPU search needs most, and (c) fits itself into what is left (its CPU
baseline of resnet18 runs only with a minute to spare). A time guard skips what no longer fits. The report table is printed and written as JSON to ``--out`` (default
``$OUT/gpu_check.json`` when ``$OUT`` is set, else a new temporary folder), after every section.
"""
from __future__ import annotations

import time

START = time.perf_counter()  # the time guard counts the imports too

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402

from nas.data import InMemoryDataModule  # noqa: E402
from nas.device import resolve_device  # noqa: E402
from nas.space import EinSpace  # noqa: E402
from nas.training import TrainerConfig, evaluate_candidate  # noqa: E402
from nas.training.gpu import apply_tf32  # noqa: E402
from surrogates.encodings.proxies import PROXIES  # noqa: E402
from surrogates.encodings.zcp import ZCPEncoder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHAPE, CLASSES, ADDNIST_TRAIN = (3, 28, 28), 20, 45_000


@dataclass(frozen=True)
class Sizes:
    limit_s: float          # the whole script, imports included
    train: int
    valid: int
    epochs: int
    batch: int              # (b) and (c)
    repeats: int            # (b) timed forward+backward passes
    warm_up: bool           # (a) train one untimed epoch first (the first Trainer, cuDNN)
    zcp_samples: int        # (c) small sampled architectures (and resnet18 if zcp_resnet18)
    zcp_resnet18: bool
    workers: tuple[int, ...]
    budget: int             # (d) candidates per worker count (the same for each: the same work)
    search_epochs: int
    search_cap_s: float     # (d) at most this long per worker count
    search_extra: tuple[str, ...] = ()  # (d) further search.py overrides


FULL = Sizes(limit_s=450, train=5000, valid=1000, epochs=16, batch=256, repeats=20, warm_up=True,
             zcp_samples=4, zcp_resnet18=True, workers=(1, 2, 4), budget=12, search_epochs=16,
             search_cap_s=105)
SMOKE = Sizes(limit_s=110, train=256, valid=256, epochs=1, batch=16, repeats=1, warm_up=False,
              zcp_samples=2, zcp_resnet18=False, workers=(1, 2), budget=2, search_epochs=1,
              search_cap_s=40, search_extra=("dataset.n_train=512", "dataset.n_valid=256"))
# Seconds a section needs at least, or it is skipped (full mode; smoke mode takes a third), and
# the seconds (d) leaves to (c).
NEEDS = {"a": 40, "b": 15, "c": 20, "d": 60}
C_RESERVE_S, RESNET18_CPU_S = 80, 60


class RandomAddNIST(InMemoryDataModule):
    """Random tensors shaped like AddNIST (3x28x28, 20 classes), in memory on ``device``."""

    def __init__(self, n_train: int, n_valid: int, **kwargs):
        super().__init__(name="random_addnist", input_shape=SHAPE, num_classes=CLASSES, **kwargs)
        self.sizes = {"train": n_train, "valid": n_valid, "test": n_valid}

    def _load_splits(self):
        g = torch.Generator().manual_seed(0)
        return {k: (torch.randn(n, *SHAPE, generator=g), torch.randint(0, CLASSES, (n,), generator=g))
                for k, n in self.sizes.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def elapsed() -> float:
    return time.perf_counter() - START


# ------------------------------------------------------------------------------------ (a)
def check_training(s: Sizes, device: torch.device) -> dict:
    dm = RandomAddNIST(s.train, s.valid, device=device)
    dm.setup()
    space = EinSpace(input_shape=SHAPE)
    arch = space.seed("resnet18")
    cfg = TrainerConfig(max_epochs=s.epochs, forward_time_limit_s=1e9, memory_limit_mb=None, time_budget_s=None)
    warm = evaluate_candidate(arch, dm, cfg.replace(max_epochs=1), space=space, seed=0) if s.warm_up else None
    t0 = time.perf_counter()
    record = evaluate_candidate(arch, dm, cfg, space=space, seed=0)
    wall = time.perf_counter() - t0
    if not record.ok:
        raise RuntimeError(f"resnet18 did not train: {record.status} {record.reason}")
    epoch_s = statistics.median(row["seconds"] for row in record.history)
    return {"data": f"random 3x28x28, 20 classes, {s.train} train / {s.valid} valid, batch 256",
            "epochs": s.epochs, "seconds_per_candidate": wall, "median_epoch_s": epoch_s,
            "overhead_ratio": wall / (s.epochs * epoch_s), "forward_s": record.forward_s,
            "warm_up_candidate_s": warm and warm.seconds, "val_acc": record.val_acc,
            "projected_45000_train_s": wall + s.epochs * epoch_s * (ADDNIST_TRAIN / s.train - 1)}


# ------------------------------------------------------------------------------------ (b)
def _fwd_bwd_seconds(net, x, repeats: int, device: torch.device) -> float:
    for _ in range(2):  # warm-up: cuDNN algorithm choice, allocator
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def _relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check_fused(s: Sizes, device: torch.device) -> dict:
    space = EinSpace(input_shape=SHAPE)
    arch = space.seed("resnet18")
    x = torch.randn(s.batch, *SHAPE, generator=torch.Generator().manual_seed(1)).to(device)
    nets = {}
    for fuse in (True, False):
        torch.manual_seed(0)
        nets[fuse] = space.build(arch, CLASSES, fuse=fuse).to(device)
    gaps = {}
    for policy in (False, True):  # full float32, then the trainer's tf32: true (left on for the timing)
        apply_tf32(policy, device)
        with torch.no_grad():
            gaps[policy] = _relative_gap(nets[True](x), nets[False](x))
    seconds = {fuse: _fwd_bwd_seconds(net, x, s.repeats, device) for fuse, net in nets.items()}
    return {"batch": s.batch, "fused_s": seconds[True], "literal_s": seconds[False],
            "fused_speedup": seconds[False] / seconds[True], "gap_tf32": gaps[True], "gap_fp32": gaps[False],
            "same_output": gaps[True] <= 1e-2 and gaps[False] <= 1e-4,
            "tolerance": "max|fused-literal|/max|literal| <= 1e-2 (tf32), 1e-4 (float32)"}


# ------------------------------------------------------------------------------------ (c)
def _timed_row(encoder: ZCPEncoder, arch, device: torch.device) -> tuple[list[float], float]:
    _sync(device)
    t0 = time.perf_counter()
    row = encoder.encode([arch])[0]
    _sync(device)
    return [float(v) for v in row], time.perf_counter() - t0


def _rel_diff(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    return abs(a - b) / max(abs(b), 1e-12)


def check_proxies(s: Sizes, device: torch.device, deadline: float) -> dict:
    """Small sampled architectures first (under 256 MiB of estimated training memory at the
    batch), resnet18 last; each one on the device, and its CPU baseline while the deadline allows
    (the speed-up and differences are over the architectures that have both)."""
    space = EinSpace(input_shape=SHAPE)
    g = torch.Generator().manual_seed(2)
    batch = (torch.randn(s.batch, *SHAPE, generator=g), torch.randint(0, CLASSES, (s.batch,), generator=g))
    sampled = (space.sample(seed) for seed in range(1000))
    small = list(itertools.islice((a for a in sampled if space.memory_bytes(a, s.batch) <= 2**28),
                                  s.zcp_samples + 1))
    archs = {f"sample {i}": a for i, a in enumerate(small[1:])}
    if s.zcp_resnet18:
        archs["resnet18"] = space.seed("resnet18")
    on_device = ZCPEncoder(space, batch, CLASSES, device=device)
    on_cpu = ZCPEncoder(space, batch, CLASSES, device="cpu")
    on_device.encode(small[:1])  # warm-up (first kernels), not timed
    rows: dict[str, dict] = {}
    for name, arch in archs.items():
        if rows and elapsed() + 5 > deadline:
            break
        dev_row, dev_s = _timed_row(on_device, arch, device)
        rows[name] = {"device_s": dev_s, "cpu_s": None}
        slowest = max((r["cpu_s"] or 0.0 for r in rows.values()), default=0.0)
        if elapsed() + (RESNET18_CPU_S if name == "resnet18" else 2 * slowest) > deadline:
            continue  # no time for its CPU baseline
        cpu_row, rows[name]["cpu_s"] = _timed_row(on_cpu, arch, torch.device("cpu"))
        rows[name]["rel_diff"] = {p: _rel_diff(d, c) for p, d, c in zip(PROXIES, dev_row, cpu_row, strict=True)}
    both = [r for r in rows.values() if r["cpu_s"] is not None]
    if not both:
        raise RuntimeError(f"no CPU baseline fitted in the time left ({list(rows)} timed on {device})")
    per_proxy = {p: max(r["rel_diff"][p] for r in both) for p in PROXIES}
    dev_total, cpu_total = sum(r["device_s"] for r in both), sum(r["cpu_s"] for r in both)
    return {"batch": s.batch, "architectures": list(rows), "device_s_per_arch": dev_total / len(both),
            "cpu_s_per_arch": cpu_total / len(both), "speedup": cpu_total / dev_total,
            "max_rel_diff": max(per_proxy.values()), "max_rel_diff_per_proxy": per_proxy,
            "per_arch": rows, "cpu_threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------ (d)
def _search_command(s: Sizes, workers: int, out_dir: Path) -> list[str]:
    return [sys.executable, str(REPO / "search.py"), "dataset=mini_addnist",
            f"trainer.max_epochs={s.search_epochs}", f"search.budget={s.budget}",
            f"strategy.population_size={s.budget}", "surrogate=random", f"search.workers={workers}",
            f"search.workers_per_gpu={workers}", f"paths.output_dir={out_dir}", "logger=none",
            "search.progress=false", "search.first_generation=null", *s.search_extra]


def _run_search(cmd: list[str], timeout: float) -> tuple[int | None, str, float]:
    """(exit code or None on timeout, last output, seconds); the search's process group is ended."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "WANDB_MODE": "disabled"})
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        code = None
    return code, out or "", time.perf_counter() - t0


def _count_records(out_dir: Path) -> tuple[int, dict | None]:
    archive = next(out_dir.rglob("archive.jsonl"), None)
    n = 0 if archive is None else sum(1 for line in archive.read_text().splitlines() if line.strip())
    result = next(out_dir.rglob("result.json"), None)
    return n, None if result is None else json.loads(result.read_text())


def check_workers(s: Sizes, deadline: float, scratch: Path) -> dict:
    rows: dict[str, dict] = {}
    for i, workers in enumerate(s.workers):
        timeout = min(s.search_cap_s, (deadline - elapsed()) / (len(s.workers) - i))
        if timeout < NEEDS["d"] / 3:
            rows[str(workers)] = {"status": "skipped (time guard)"}
            continue
        out_dir = scratch / f"workers-{workers}"  # no '=': Hydra reads the path as an override
        code, out, wall = _run_search(_search_command(s, workers, out_dir), timeout)
        n, result = _count_records(out_dir)
        row = {"candidates": n, "wall_s": wall, "per_min": 60 * n / wall}
        if result:
            row["search_wall_s"] = result.get("wall_seconds")
            row["search_per_min"] = 60 * n / result["wall_seconds"] if result.get("wall_seconds") else None
        if code is None:
            row["status"] = f"timed out after {wall:.0f} s (partial: {n} records)"
        elif code != 0:
            lines = [ln for ln in out.splitlines() if ln.strip()]
            row = {"status": "not available", "error": " | ".join(lines[-3:])[-400:]}
        else:
            row["status"] = "ok"
        rows[str(workers)] = row
    base = rows.get("1", {}).get("per_min")
    for row in rows.values():
        if base and row.get("per_min"):
            row["vs_1_worker"] = row["per_min"] / base
    status = "ok" if any(row["status"] == "ok" for row in rows.values()) else "not available"
    return {"status": status, "budget": s.budget, "epochs": s.search_epochs, "dataset": "mini_addnist",
            "workers": rows}


# ------------------------------------------------------------------------------------ report
def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary(key: str, sec: dict) -> str:
    if sec.get("status") != "ok" and "workers" not in sec:
        return sec.get("error", "")[:120]
    if key == "a":
        return (f"{sec['seconds_per_candidate']:.1f} s/candidate ({sec['epochs']} epochs, {sec['data']}); "
                f"epoch {sec['median_epoch_s']:.3f} s; overhead x{sec['overhead_ratio']:.2f}; "
                f"projected at 45,000 train {sec['projected_45000_train_s']:.0f} s")
    if key == "b":
        return (f"fused {sec['fused_s'] * 1e3:.1f} ms, literal {sec['literal_s'] * 1e3:.1f} ms "
                f"(fused x{sec['fused_speedup']:.2f} faster); gap tf32 {sec['gap_tf32']:.1e}, "
                f"float32 {sec['gap_fp32']:.1e}: {'same' if sec['same_output'] else 'DIFFERENT'}")
    if key == "c":
        r18 = sec["per_arch"].get("resnet18")
        r18 = "" if r18 is None else f"; resnet18 {r18['device_s']:.2f} s on device, " + (
            "CPU skipped (time)" if r18["cpu_s"] is None else f"{r18['cpu_s']:.2f} s on CPU")
        both = sum(r["cpu_s"] is not None for r in sec["per_arch"].values())
        return (f"{sec['device_s_per_arch']:.2f} s/arch on device vs {sec['cpu_s_per_arch']:.2f} s on CPU "
                f"(x{sec['speedup']:.1f}, {both} archs, batch {sec['batch']}); "
                f"max rel diff {sec['max_rel_diff']:.1e}{r18}")
    parts = []
    for w, row in sec["workers"].items():
        rate = row["status"]
        if row.get("per_min") is not None:
            inside = row.get("search_per_min")
            rate = f"{row['per_min']:.2f}/min" + ("" if inside is None else f" ({inside:.2f} in the search)")
        ratio = f" x{row['vs_1_worker']:.2f}" if "vs_1_worker" in row else ""
        parts.append(f"{w} worker(s): {rate}{ratio}")
    return "; ".join(parts)


TITLES = {"a": "resnet18 training", "b": "fused vs literal", "c": "zero-cost proxies", "d": "search workers"}


def print_table(report: dict) -> None:
    print(f"\n== report ({report['mode']}, {report['device']}, {report['elapsed_s']:.0f} s)")
    for key, title in TITLES.items():
        sec = report["sections"].get(key, {"status": "not run"})
        print(f"({key}) {title:18s} {sec['status']:14s} {summary(key, sec)}")


def default_out() -> Path:
    folder = os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu_check-")
    return Path(folder) / "gpu_check.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="reduced sizes (a CPU run that checks the script)")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default $OUT/gpu_check.json or a temp dir)")
    parser.add_argument("--only", default="abcd", help="sections to run, e.g. --only ac")
    args = parser.parse_args()
    device = resolve_device("auto")
    if device.type != "cuda" and not args.smoke:
        print("no GPU: the full sizes would take hours on a CPU; running --smoke instead")
        args.smoke = True
    s = SMOKE if args.smoke else FULL
    scale = 1 / 3 if args.smoke else 1.0
    out = args.out or default_out()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    print(f"python {platform.python_version()}, torch {torch.__version__}, device {device} ({gpu or 'no GPU'}), "
          f"{torch.get_num_threads()} CPU threads; mode {'smoke' if args.smoke else 'full'}; report -> {out}")
    report = {"mode": "smoke" if args.smoke else "full", "device": str(device), "gpu": gpu,
              "torch": torch.__version__, "sizes": asdict(s), "sections": {}}
    scratch = Path(tempfile.mkdtemp(prefix="gpu_check-search-"))
    sections = {"a": lambda: check_training(s, device), "b": lambda: check_fused(s, device),
                "d": lambda: check_workers(s, s.limit_s - C_RESERVE_S * scale, scratch),
                "c": lambda: check_proxies(s, device, s.limit_s)}
    for key, run in sections.items():
        if key not in args.only:
            continue
        if elapsed() + NEEDS[key] * scale > s.limit_s:
            report["sections"][key] = {"status": "skipped", "error": f"time guard: {elapsed():.0f} s of {s.limit_s:.0f}"}
        else:
            print(f"\n({key}) {TITLES[key]} ...", flush=True)
            t0 = time.perf_counter()
            try:
                report["sections"][key] = {"status": "ok", **run()}
            except Exception as err:  # noqa: BLE001 - a check: report the failure, run the rest
                traceback.print_exc()
                report["sections"][key] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            report["sections"][key]["seconds"] = time.perf_counter() - t0
            print(f"({key}) {report['sections'][key]['status']}: {summary(key, report['sections'][key])}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # (d)'s searches share the GPU with this process
        report["elapsed_s"] = elapsed()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=_fmt))
    report["elapsed_s"] = elapsed()
    out.write_text(json.dumps(report, indent=2, default=_fmt))
    print_table(report)
    print(f"report written to {out}")


if __name__ == "__main__":
    main()
