"""Benchmarks for candidate training (nas/training). Prints numbers; baselines run in the same process.

    OMP_NUM_THREADS=1 python bench/training.py              # (a) Lightning overhead, (b) candidates/min
    OMP_NUM_THREADS=1 python bench/training.py --only a     # just the overhead ratio
    python bench/training.py --gpu                          # (c) needs CUDA; ~2-3 min on an H100

(a) Lightning fitness (``evaluate_candidate`` with its checks off) vs a plain PyTorch loop doing
    exactly the same work (seeded build, SGD + cosine, per-step NaN check, last-epoch evaluation)
    on the same candidate, data and epochs; one thread; interleaved repeats, median. Target <= 1.10.
(b) Candidates per minute with the default search settings (``conf/trainer/search.yaml``: 16
    epochs, auto limits) on mini_addnist, random architectures from ``EinSpace.sample``.
(c) resnet18 seed on AddNIST-shaped random data (45,000 x 3x28x28, 20 classes, on the GPU):
    seconds per training epoch, Lightning vs plain loop, fuse_convolutions True vs False.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter

os.environ.setdefault("WANDB_MODE", "disabled")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from nas.data import InMemoryDataModule, MiniDigitsDataModule  # noqa: E402
from nas.space import EinSpace  # noqa: E402
from nas.training import TrainerConfig, evaluate_candidate  # noqa: E402

NO_CHECKS = dict(forward_time_limit_s=None, memory_limit_mb=None, time_budget_s=None)


# ------------------------------------------------------------------------------------ baseline
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_fitness(build, datamodule, epochs: int, seed: int = 0, device: str | None = None,
                  epoch_times: list | None = None) -> float:
    """The paper's fitness as a bare PyTorch loop: the reference for Lightning's overhead."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    L.seed_everything(seed, verbose=False)
    net = build().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.04, momentum=0.9, weight_decay=3e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    criterion = nn.CrossEntropyLoss()
    train_loader = datamodule.train_dataloader()  # one loader: a new shuffle every epoch
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        net.train()
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = criterion(net(x), y)
            if not torch.isfinite(loss):
                raise FloatingPointError("nan")
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        _sync(device)
        if epoch_times is not None:
            epoch_times.append(time.perf_counter() - t0)
    net.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    with torch.inference_mode():
        for x, y in datamodule.val_dataloader():
            x, y = x.to(device), y.to(device)
            correct += (net(x).argmax(-1) == y).sum()
            seen += len(y)
    return float(correct) / seen


# ------------------------------------------------------------------------------------ (a)
def bench_overhead(epochs: int, resnet_epochs: int, repeats: int) -> None:
    print(f"\n(a) Lightning vs plain loop: mini_addnist (4096 train / 1024 valid, batch 256), "
          f"{torch.get_num_threads()} thread(s), {repeats} interleaved repeats, median")
    dm = MiniDigitsDataModule(name="mini_addnist", input_shape=[3, 16, 16], num_classes=20, on_device=True)
    dm.setup()
    space = EinSpace(input_shape=dm.input_shape)
    small = "sequential[routing[im2col(3,1,1), computation<linear(16)>, col2im], computation<relu>]"
    candidates = {
        "small conv (random-sample sized)": (space.parse(small), epochs),
        "resnet18 seed": (space.seed("resnet18"), resnet_epochs),
    }
    print(f"{'candidate':34s} {'epochs':>6s} {'params':>10s} {'plain s':>9s} {'lightning s':>12s} "
          f"{'ratio':>7s}  same acc")
    for label, (arch, n_epochs) in candidates.items():
        cfg = TrainerConfig(max_epochs=n_epochs, **NO_CHECKS)

        def build(arch=arch):
            return space.build(arch, dm.num_classes)

        plain_t, light_t, accs = [], [], set()
        evaluate_candidate(arch, dm, cfg, space=space, seed=0)  # warm-up (first Trainer, allocator)
        for _ in range(repeats):
            t0 = time.perf_counter()
            acc_plain = plain_fitness(build, dm, n_epochs, seed=0)
            plain_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            record = evaluate_candidate(arch, dm, cfg, space=space, seed=0)
            light_t.append(time.perf_counter() - t0)
            assert record.ok, record.reason
            accs.add((acc_plain, record.val_acc))
        p, lt = statistics.median(plain_t), statistics.median(light_t)
        same = all(a == b for a, b in accs)
        print(f"{label:34s} {n_epochs:>6d} {arch.num_params:>10,d} {p:>9.3f} {lt:>12.3f} "
              f"{lt / p:>7.3f}  {same}", flush=True)


# ------------------------------------------------------------------------------------ (b)
def bench_search(minutes: float, max_candidates: int, epochs: int) -> None:
    cfg = TrainerConfig(max_epochs=epochs)  # = conf/trainer/search.yaml when epochs == 16
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"\n(b) random candidates with the search trainer: {epochs} epochs, limits auto on {device} "
          f"(forward {cfg.forward_limit_for(device)} s, budget {cfg.time_budget_for(device)} s, "
          f"memory {cfg.memory_limit_mb} MB), mini_addnist, {torch.get_num_threads()} thread(s), "
          f"stop after {minutes} min or {max_candidates} candidates")
    dm = MiniDigitsDataModule(name="mini_addnist", input_shape=[3, 16, 16], num_classes=20)
    dm.setup()
    space = EinSpace(input_shape=dm.input_shape)
    statuses: Counter = Counter()
    sample_s, eval_s, forward = [], [], []
    t_start = time.perf_counter()
    seed = 0
    while time.perf_counter() - t_start < minutes * 60 and seed < max_candidates:
        t0 = time.perf_counter()
        arch = space.sample(seed)
        sample_s.append(time.perf_counter() - t0)
        record = evaluate_candidate(arch, dm, cfg, space=space, seed=seed)
        eval_s.append(record.seconds)
        statuses[record.status] += 1
        if record.forward_s is not None:
            forward.append(record.forward_s)
        acc = "-" if record.val_acc is None else f"{record.val_acc:.3f}"
        print(f"  #{seed:<3d} {record.status:10s} acc {acc:>5s}  {record.seconds:7.1f} s  "
              f"sample {sample_s[-1]:5.2f} s  params {record.num_params or 0:>9,d}  "
              f"fwd {record.forward_s or 0:.4f} s  {record.reason[:60]}", flush=True)
        seed += 1
    total = time.perf_counter() - t_start
    n = len(eval_s)
    print(f"  {n} candidates in {total:.0f} s: {60 * n / total:.2f} candidates/min "
          f"(sampling {sum(sample_s):.0f} s, evaluation {sum(eval_s):.0f} s); statuses {dict(statuses)}")
    if eval_s:
        print(f"  seconds per candidate: median {statistics.median(eval_s):.2f}, mean "
              f"{statistics.mean(eval_s):.2f}, max {max(eval_s):.1f}")
    if forward:
        q = sorted(forward)
        print(f"  forward s (batch 256): median {q[len(q) // 2]:.4f}, "
              f"p90 {q[min(len(q) - 1, math.ceil(0.9 * len(q)) - 1)]:.4f}, max {q[-1]:.4f}")


# ------------------------------------------------------------------------------------ (c)
class RandomImages(InMemoryDataModule):
    """AddNIST-shaped random data (45,000 / 15,000 / 10,000 × 3×28×28, 20 classes)."""

    def _load_splits(self):
        g = torch.Generator().manual_seed(0)
        sizes = {"train": 45_000, "valid": 15_000, "test": 10_000}
        return {k: (torch.randn(n, *self.input_shape, generator=g),
                    torch.randint(0, self.num_classes, (n,), generator=g)) for k, n in sizes.items()}


def bench_gpu(epochs: int) -> None:
    if not torch.cuda.is_available():
        print("\n(c) skipped: CUDA is not available")
        return
    print(f"\n(c) resnet18 seed, AddNIST-shaped random data on {torch.cuda.get_device_name()}, "
          f"batch 256, {epochs} timed epochs after one warm-up epoch; seconds per training epoch")
    dm = RandomImages(name="random_addnist", input_shape=[3, 28, 28], num_classes=20, on_device=True)
    dm.setup()
    print(f"{'fuse_convolutions':18s} {'plain s/epoch':>14s} {'lightning s/epoch':>18s} {'ratio':>7s}  forward s")
    for fuse in (True, False):
        space = EinSpace(input_shape=dm.input_shape, fuse_convolutions=fuse)
        arch = space.seed("resnet18")

        def build(space=space, arch=arch):
            return space.build(arch, dm.num_classes)

        warm: list[float] = []
        plain_fitness(build, dm, 1, epoch_times=warm)  # cuDNN/cuBLAS warm-up
        plain: list[float] = []
        plain_fitness(build, dm, epochs, epoch_times=plain)
        cfg = TrainerConfig(max_epochs=epochs, forward_time_limit_s=1e9, memory_limit_mb=None, time_budget_s=None)
        record = evaluate_candidate(arch, dm, cfg, space=space, seed=0)
        assert record.ok, record.reason
        light = [row["seconds"] for row in record.history]
        p, lt = statistics.median(plain), statistics.median(light)
        print(f"{str(fuse):18s} {p:>14.3f} {lt:>18.3f} {lt / p:>7.3f}  {record.forward_s:.4f}"
              f"  (warm-up epoch {warm[0]:.2f} s, val_acc {record.val_acc:.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["a", "b"], help="run only (a) or (b)")
    parser.add_argument("--gpu", action="store_true", help="run (c) only (needs CUDA)")
    parser.add_argument("--epochs", type=int, default=16, help="(a) epochs, small candidate (search: 16)")
    parser.add_argument("--resnet-epochs", type=int, default=1, help="(a) epochs, resnet18 (slow on CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="(a) interleaved repeats")
    parser.add_argument("--search-epochs", type=int, default=16, help="(b) epochs (search default 16)")
    parser.add_argument("--minutes", type=float, default=5.0, help="(b) time cap")
    parser.add_argument("--candidates", type=int, default=40, help="(b) candidate cap")
    parser.add_argument("--gpu-epochs", type=int, default=2, help="(c) timed epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU parts)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"python {platform.python_version()}, torch {torch.__version__}, lightning {L.__version__}, "
          f"{platform.processor() or platform.machine()}, cuda={torch.cuda.is_available()}")
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    if args.gpu:
        bench_gpu(args.gpu_epochs)
        return
    if args.only in (None, "a"):
        bench_overhead(args.epochs, args.resnet_epochs, args.repeats)
    if args.only in (None, "b"):
        bench_search(args.minutes, args.candidates, args.search_epochs)


if __name__ == "__main__":
    main()
