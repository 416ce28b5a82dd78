"""Fault injection: a search SIGKILLed at chosen points (before its first checkpoint, half-way
through an archive line, half-way through the checkpoint, during a surrogate refit, while its
figures, features.csv or result.json are written) ends, after plain reruns, with the archive of
an uninterrupted run, and no archive row is ever lost.

The faults come from ``tests/fault_driver.py``, which monkeypatches the target function in the
search process (nothing in the production code knows about it) to write partially and then
SIGKILL its own process at the n-th call. Each search runs in a forked child of this test
process (``fault_driver.run_forked``): a separate process that the kill ends, without paying for
the torch and Lightning imports every time. Two chains of kills: each kill is followed by the
next faulted run, which is also a resume, and the last by plain reruns until the search is done.
"""
import json
import os
from pathlib import Path

import pytest
from fault_driver import preload, run_forked
from search_helpers import FAST

from nas.search.archive import read_archive

ARM = ["strategy=surrogate_evolution", "surrogate=rf", "encoding=graf", "strategy.n_sampled=4", "strategy.n_chosen=2",
       "strategy.refit_every=2", "search.figures_every=2", "search.figures_min_interval_s=0"]
RUN = Path("search/mini_addnist/surrogate_evolution-rf-graf/seed=0")
# (fault, n): the n-th call of the target in that process writes partially and kills it.
CHAINS = {
    "a": [("checkpoint", 1),        # after the first archive line, before the first checkpoint
          ("archive_line", 3),      # half of an archive line (after a replay of the archive)
          ("checkpoint_write", 2),  # half of the checkpoint's temporary file
          ("refit", 1),             # the surrogate's first fit (at the population's end)
          ("refit", 2),             # a refit (in the resumed process: the refit at load, then this)
          ("figures", 1)],          # while the figures are drawn, mid-search
    "b": [("archive_line", 1),      # half of the very first line: no complete record, no checkpoint
          ("checkpoint", 1),        # one record, no checkpoint again
          ("features", 1),          # half of features.csv
          ("result", 1)],           # half of result.json, after the final figures
}
TIMING_KEYS = ("seconds",)


def _overrides(output_dir: Path) -> list[str]:
    return [*FAST, *ARM, f"paths.output_dir={output_dir}"]


def _comparable(records):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def _complete_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data.split(b"\n")[:-1] if line.strip()]  # the last piece: unterminated


def _run_chain(root: Path, faults) -> tuple[list[dict], int, int, list[str]]:
    """Run ``faults`` in order in one run dir, then plain reruns until done. Returns the final
    archive, kills made, kills survived and what went wrong."""
    run_dir = root / RUN
    log = root.with_suffix(".log")
    seen: list[tuple[int, set[bytes]]] = []  # per kill: the archive rows at that moment
    problems, made = [], 0
    for number, (fault, n) in enumerate(faults):
        code = run_forked(fault, n, _overrides(root), log)
        if code != -9:
            problems.append(f"{fault}:{n} did not die by SIGKILL (exit {code})")
            continue
        made += 1
        seen.append((number, set(_complete_lines(run_dir / "archive.jsonl"))))
    for _ in range(3):
        code = run_forked("none", 0, _overrides(root), log)
        if code == 0 and (run_dir / "result.json").exists():
            break
        problems.append(f"a plain rerun exited {code}")
    kept = set(_complete_lines(run_dir / "archive.jsonl")) | set(_complete_lines(run_dir / "archive.redone.jsonl"))
    survived = 0
    for number, rows in seen:
        lost = rows - kept
        if lost:
            problems.append(f"after kill {faults[number]}: {len(lost)} archive row(s) lost")
        else:
            survived += 1
    leftovers = [p.name for folder in (run_dir, run_dir / "figures") for p in folder.glob(".*.tmp")]
    if leftovers:
        problems.append(f"temporary files left: {leftovers}")
    return read_archive(run_dir / "archive.jsonl"), made, survived, problems


def test_killed_anywhere_the_search_ends_with_the_uninterrupted_archive(tmp_path, capsys):
    preload()
    reference_dir = tmp_path / "reference"
    assert run_forked("none", 0, _overrides(reference_dir), tmp_path / "reference.log") == 0, \
        (tmp_path / "reference.log").read_text()[-3000:]
    reference = read_archive(reference_dir / RUN / "archive.jsonl")
    assert json.loads((reference_dir / RUN / "result.json").read_text())["iterations"] == 8
    assert any(r.get("prediction") is not None for r in reference)  # the surrogate chose candidates

    made = survived = 0
    problems = []
    for name, faults in CHAINS.items():
        archive, chain_made, chain_survived, chain_problems = _run_chain(tmp_path / name, faults)
        if _comparable(archive) != _comparable(reference):
            chain_problems.append(f"chain {name}: the final archive differs from the uninterrupted one")
            chain_survived = 0
        made, survived = made + chain_made, survived + chain_survived
        problems += [f"chain {name}: {p}" for p in chain_problems]
        result = json.loads((tmp_path / name / RUN / "result.json").read_text())
        assert result["iterations"] == 8 and result["candidates"]["evaluated"] == len(reference)
    with capsys.disabled():
        print(f"\nfault injection: {survived}/{made} kills survived "
              f"({sum(len(f) for f in CHAINS.values())} scheduled)", flush=True)
    logs = "\n".join(p.read_text()[-1500:] for p in tmp_path.glob("*.log"))
    assert not problems, "\n".join(problems) + "\n" + logs
    assert made == survived == sum(len(f) for f in CHAINS.values())


@pytest.mark.slow
def test_the_driver_kills_a_real_search_process(tmp_path):
    """The driver as a command (``python tests/fault_driver.py FAULT N overrides``): a fresh
    interpreter, killed half-way through its first archive line; the plain command then finishes."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = _overrides(tmp_path)
    killed = subprocess.run([sys.executable, str(repo / "tests" / "fault_driver.py"), "archive_line", "2", *args],
                            env=env, cwd=repo, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (tmp_path / RUN / "archive.jsonl").read_bytes().count(b"\n") == 1  # one line and a half
    done = subprocess.run([sys.executable, str(repo / "search.py"), *args], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / RUN / "result.json").read_text())["iterations"] == 8
    assert (tmp_path / RUN / "archive.redone.jsonl").read_bytes().count(b"\n") == 1  # the half line, kept
