"""Multirun smoke tests through the real launchers: joblib (two jobs in parallel) and submitit_local
(chosen by a conf/local-style override file, as a SLURM user's git-ignored file chooses
submitit_slurm), over both embedded datasets with tiny settings. Each job is one search.

Most of the time is each job's start (importing torch and Lightning in a fresh process), so each
test launches once. The kill-and-resubmit check is ``slow``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("mini_addnist", "mini_multnist")
ARM = "surrogate_evolution-random-none"
# OMP_NUM_THREADS=2: the callback, not the environment, must bring every parallel job to one thread.
ENV = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "HYDRA_FULL_ERROR": "1"}
# The RE baseline arm, tiny: a population of 2, then 1 surrogate-chosen (random-scored) iteration.
TINY = ["surrogate=random", "search.budget=3", "strategy.population_size=2", "strategy.n_sampled=2",
        "strategy.n_chosen=1", "trainer.max_epochs=1", "search.progress=false", "sweep_name=smoke"]

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


def _search(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "search.py", "-m", f"dataset={','.join(DATASETS)}", *TINY, *args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def _runs(output_dir: Path) -> dict[str, Path]:
    return {d: output_dir / "multirun" / "smoke" / d / ARM / "seed=0" for d in DATASETS}


def _check_finished(output_dir: Path) -> dict[str, dict]:
    results = {}
    for dataset, run in _runs(output_dir).items():
        result = json.loads((run / "result.json").read_text())
        assert result["iterations"] == 3, result
        results[dataset] = result
    return results


def test_joblib_runs_jobs_in_parallel_one_thread_each(tmp_path):
    out = _search(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "logger=csv", f"paths.output_dir={tmp_path}"])
    assert out.returncode == 0, out.stderr[-3000:]
    _check_finished(tmp_path)
    for num, (dataset, run) in enumerate(_runs(tmp_path).items()):
        log = (run / "search.log").read_text()
        assert f"job {num}: 1 thread(s), CPU" in log, log[-2000:]
        # the fields a dashboard compares arms by, in the summary (W&B's and summary.json)
        summary = json.loads((run / "summary.json").read_text())
        assert {k: summary[k] for k in ("dataset", "arm", "seed", "test_acc")} == {
            "dataset": dataset, "arm": ARM, "seed": 0, "test_acc": None}
        assert summary["best_val_acc"] > 0 and "kendall_tau" in summary and summary["tau_pairs"] >= 1
    assert "Joblib.Parallel(n_jobs=2" in out.stdout + out.stderr


def _local_override(tmp_path: Path, name: str = "smoke", timeout_min: int = 10) -> list[str]:
    """A ``local`` config outside the repository (a user's conf/local/ file is git-ignored)."""
    conf = tmp_path / "conf" / "local"
    conf.mkdir(parents=True)
    (conf / f"{name}.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/launcher: submitit_local\n"
        f"hydra:\n  launcher:\n    timeout_min: {timeout_min}\n    cpus_per_task: 1\n    gpus_per_node: 0\n")
    return [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"local={name}"]


def test_submitit_local_from_a_local_override(tmp_path):
    out_dir = tmp_path / "outputs"
    out = _search([*_local_override(tmp_path), "logger=none", f"paths.output_dir={out_dir}"])
    assert out.returncode == 0, out.stderr[-3000:]
    _check_finished(out_dir)
    jobs = sorted((out_dir / "multirun" / "smoke" / ".submitit").iterdir())
    assert len([j for j in jobs if j.name[0].isdigit()]) == 2  # one submitit job (own process) per run
    for num, run in enumerate(_runs(out_dir).values()):
        assert f"job {num}: 1 thread(s), CPU" in (run / "search.log").read_text()


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _start_and_wait_for_victim(cmd: list[str], out_dir: Path, victim: Path, lines: int = 3):
    """Start the sweep; once the victim run has ``lines`` archive lines (and no result), return
    the sweep's process and the pid of the victim's job process (submitit_local's job id is the pid
    of a controller, whose child runs the job)."""
    sweep = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    archive = victim / "archive.jsonl"
    while not (archive.exists() and len(archive.read_text().splitlines()) >= lines):
        assert time.monotonic() < deadline and sweep.poll() is None, "the job never got going"
        time.sleep(0.1)
    folder = out_dir / "multirun" / "smoke" / ".submitit"
    controller = next(int(j.name) for j in folder.iterdir() if j.name.isdigit()
                      and any(f"[{victim.parents[1].name}/" in f.read_text(errors="replace") for f in j.glob("*_log.*")))
    (task,) = _children(controller)
    assert not (victim / "result.json").exists(), "the victim finished before it could be stopped"
    return sweep, task


def _slow_cmd(tmp_path: Path, budget: int = 12) -> tuple[list[str], Path]:
    out_dir = tmp_path / "outputs"
    args = [a if not a.startswith("search.budget") else f"search.budget={budget}" for a in TINY]
    # timeout_min=60: a signal now is a preemption for submitit, not a time-out
    cmd = [sys.executable, "search.py", "-m", f"dataset={','.join(DATASETS)}", *args,
           *_local_override(tmp_path, timeout_min=60), "logger=none", f"paths.output_dir={out_dir}"]
    return cmd, out_dir


@pytest.mark.slow
def test_submitit_requeues_a_preempted_job_which_resumes(tmp_path):
    """SLURM preemption as submitit sees it (USR2 to the job): submitit checkpoints the Hydra
    launcher's call and requeues it; the requeued job resumes its search from the run dir, and the
    sweep finishes without anyone resubmitting."""
    cmd, out_dir = _slow_cmd(tmp_path)
    runs = _runs(out_dir)
    victim = runs["mini_multnist"]
    sweep, task = _start_and_wait_for_victim(cmd, out_dir, victim)
    os.kill(task, signal.SIGUSR2)
    output = sweep.communicate(timeout=300)[0]
    assert sweep.returncode == 0, output[-3000:]
    results = {d: json.loads((r / "result.json").read_text()) for d, r in runs.items()}
    assert results["mini_multnist"]["iterations"] == 12 and results["mini_addnist"]["iterations"] == 12
    log = (victim / "search.log").read_text()
    assert "resuming" in log, log[-2000:]
    job_logs = "".join(f.read_text() for f in (out_dir / "multirun" / "smoke" / ".submitit").glob("*/*_log.*"))
    assert "this job is preempted" in job_logs and "Requeued job" in job_logs


@pytest.mark.slow
def test_submitit_job_killed_mid_run_resumes_when_resubmitted(tmp_path):
    """SIGKILL one submitit job mid-search (a node failure, an OOM kill): the sweep command fails;
    the same command again finishes the killed run from its checkpoint and leaves the other alone."""
    cmd, out_dir = _slow_cmd(tmp_path)
    runs = _runs(out_dir)
    victim = runs["mini_multnist"]
    sweep, task = _start_and_wait_for_victim(cmd, out_dir, victim)
    os.kill(task, signal.SIGKILL)
    first = sweep.communicate(timeout=300)[0]
    assert sweep.returncode != 0, first[-2000:]
    assert (runs["mini_addnist"] / "result.json").exists() and not (victim / "result.json").exists()
    done_before = (runs["mini_addnist"] / "result.json").read_bytes()
    lines_before = len((victim / "archive.jsonl").read_text().splitlines())

    again = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((victim / "result.json").read_text())["iterations"] == 12
    assert (runs["mini_addnist"] / "result.json").read_bytes() == done_before  # finished: untouched
    assert len((victim / "archive.jsonl").read_text().splitlines()) >= lines_before  # nothing lost
    assert "resuming" in (victim / "search.log").read_text()
