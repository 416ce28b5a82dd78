"""search.workers: several candidates at once. The archive with one worker is the sequential one;
with two, a search ends with its budget and every index once, through the CLI, after a SIGKILL of
the search with candidates in flight too; a worker that dies is replaced and its candidate
recorded; workers map onto GPUs by a pure function."""
import faulthandler
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from search_helpers import FAST, deterministic_view, run_dir_for, search_config

from nas.search.archive import read_archive
from nas.search.identity import derive_seed
from nas.search.runner import SearchError, SearchRunner
from nas.search.workers import (
    Task,
    first_gpu,
    make_pool,
    visible_gpus,
    worker_environment,
    worker_gpu,
)
from nas.search.workers.local import LocalPool

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
ARM = ["strategy=surrogate_evolution", "strategy.n_sampled=4", "strategy.n_chosen=2", "strategy.refit_every=2"]


def _env():
    return {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _command(output_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(REPO / "search.py"), *FAST, *ARM, f"paths.output_dir={output_dir}", *overrides]


def _children(pid: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children |= {int(p) for p in (task / "children").read_text().split()}
        except (FileNotFoundError, ProcessLookupError):
            pass
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _check_complete(run_dir: Path, budget: int) -> list[dict]:
    records = read_archive(run_dir / "archive.jsonl")
    indices = [r["index"] for r in records]
    assert sorted(indices) == list(range(len(records))), "an index is missing or archived twice"
    assert all(r["seed"] == derive_seed(0, r["index"]) for r in records)
    trained = [r for r in records if r["status"] == "ok"]
    assert sorted(r["iteration"] for r in trained) == list(range(budget))
    assert json.loads((run_dir / "result.json").read_text())["iterations"] == budget
    state = json.loads(json.loads((run_dir / "checkpoint.json").read_text())["body"])
    assert state["in_flight"] == [] and state["next_index"] == len(records)
    return records


# ------------------------------------------------------------------------------ devices
def test_workers_map_onto_gpus_by_number():
    assert [worker_gpu(i, 0) for i in range(3)] == [None, None, None]
    assert [worker_gpu(i, 2) for i in range(5)] == [0, 1, 0, 1, 0]
    assert [worker_gpu(i, 3, workers_per_gpu=2) for i in range(8)] == [0, 0, 1, 1, 2, 2, 0, 0]
    with pytest.raises(ValueError, match="workers_per_gpu"):
        worker_gpu(0, 2, workers_per_gpu=0)
    # a local parallel sweep: job j starts after the GPUs of the jobs before it
    assert first_gpu(None, 2) == first_gpu(0, 2) == 0 and first_gpu(1, 2) == 2 and first_gpu(3, 3, workers_per_gpu=2) == 6
    assert [worker_gpu(i, 4, first=first_gpu(1, 2)) for i in range(2)] == [2, 3]
    assert [worker_gpu(i, 4, first=first_gpu(3, 2)) for i in range(2)] == [2, 3]  # wraps around
    with pytest.raises(ValueError, match="negative"):
        worker_gpu(-1, 2)


def test_each_worker_sees_only_its_own_gpu_and_one_thread():
    environ = {"CUDA_VISIBLE_DEVICES": "3,5,7"}
    assert visible_gpus(3, environ) == ["3", "5", "7"]
    assert visible_gpus(2, {}) == ["0", "1"]
    env = worker_environment(4, 3, workers_per_gpu=2, environ=environ)  # worker 4: third GPU
    assert env["CUDA_VISIBLE_DEVICES"] == "7" and env["OMP_NUM_THREADS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in worker_environment(1, 0)  # on a CPU the GPUs stay as they are


@pytest.mark.parametrize("override, message", [("search.workers=0", "search.workers must be"),
                                               ("search.executor=ray", "search.executor must be"),
                                               ("search.workers_per_gpu=0", "workers_per_gpu must be")])
def test_bad_worker_settings_are_one_line_errors(tmp_path, override, message):
    cfg = search_config(override)
    with pytest.raises(SearchError, match=message):
        make_pool(cfg, tmp_path, None, None, None)


# ----------------------------------------------------------------------------- one worker
@pytest.mark.parametrize("surrogate", ["random", "rf"])
def test_one_worker_writes_the_archive_a_sequential_search_wrote(tmp_path, surrogate):
    """tests/golden/: archives written before search.workers existed (the command is in the file)."""
    golden = json.loads((GOLDEN / f"sequential_{surrogate}.json").read_text())["records"]
    cfg = search_config(*ARM, f"surrogate={surrogate}", "search.budget=12", "search.first_generation=null",
                        output_dir=tmp_path)
    run_dir = run_dir_for(tmp_path, cfg)
    SearchRunner(cfg, run_dir).run()
    records = deterministic_view(read_archive(run_dir / "archive.jsonl"))
    assert [r["arch"] for r in records] == [r["arch"] for r in golden]
    for ours, theirs in zip(records, golden, strict=True):
        assert {k: v for k, v in ours.items() if k not in ("val_acc", "prediction")} == \
            {k: v for k, v in theirs.items() if k not in ("val_acc", "prediction")}
        for key in ("val_acc", "prediction"):
            assert (ours[key] is None) == (theirs[key] is None)
            if ours[key] is not None:
                assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7)


# ---------------------------------------------------------------------------- two workers
def test_two_workers_train_the_budget_with_every_index_once(tmp_path):
    done = subprocess.run(_command(tmp_path, "surrogate=rf", "search.budget=14", "search.workers=2"),
                          env=_env(), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    cfg = search_config("surrogate=rf", *ARM, output_dir=tmp_path)
    records = _check_complete(run_dir_for(tmp_path / "search", cfg), 14)
    assert sum(r["origin"] == "surrogate" for r in records) >= 2  # the surrogate's batches were trained
    assert "worker 1 ready" in (run_dir_for(tmp_path / "search", cfg) / "search.log").read_text()


def test_search_killed_with_candidates_in_flight_resumes_them(tmp_path):
    command = _command(tmp_path, "surrogate=random", "search.budget=16", "search.workers=2", "trainer.max_epochs=12")
    run_dir = run_dir_for(tmp_path / "search", search_config("surrogate=random", *ARM, output_dir=tmp_path))
    proc = subprocess.Popen(command, env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, in_flight = time.time() + 300, []
    while proc.poll() is None and time.time() < deadline:
        try:
            state = json.loads(json.loads((run_dir / "checkpoint.json").read_text())["body"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            state = {}
        if state.get("iteration", 0) >= 6 and state.get("in_flight"):
            in_flight = [item["index"] for item in state["in_flight"]]
            break
        time.sleep(0.01)
    assert proc.poll() is None and in_flight, "the search ended before candidates were in flight"
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "workers outlived the killed search"

    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_complete(run_dir, 16)
    assert "in flight when the run stopped" in (run_dir / "search.log").read_text()


# ------------------------------------------------------------------------ dead workers
class _SlowOnOne:
    """A stand-in for a worker's evaluation: candidate 1 hangs (after saying so), others finish."""

    def __init__(self, marker: Path):
        self.marker = marker

    def evaluate(self, task):
        if task.index == 1:
            faulthandler.disable()  # pytest's, inherited by the fork: no traceback dump for SIGSEGV
            self.marker.write_text(str(os.getpid()))
            time.sleep(120)
        return {"val_acc": 0.5, "status": "ok", "reason": "", "seconds": 0.01}


@pytest.mark.parametrize("sig, status", [(signal.SIGKILL, "oom"), (signal.SIGSEGV, "error")])
def test_a_worker_killed_mid_candidate_is_replaced(tmp_path, sig, status):
    marker = tmp_path / "busy"
    pool = LocalPool(2, _SlowOnOne(marker), start_method="fork")
    try:
        pool.submit(Task(0, "a", 1))
        pool.submit(Task(1, "b", 2))
        results = pool.wait()
        assert [(t.index, r["status"]) for t, r in results] == [(0, "ok")]
        deadline = time.time() + 30
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.01)
        os.kill(int(marker.read_text()), sig)
        (task, result), = pool.wait()
        assert task.index == 1 and result["status"] == status and "a new worker took its place" in result["reason"]
        assert pool.replaced == 1 and pool.free() == 2
        pool.submit(Task(2, "c", 3))
        pool.submit(Task(3, "d", 4))
        finished = pool.wait()
        while len(finished) < 2:
            finished += pool.wait()
        assert sorted((t.index, r["status"]) for t, r in finished) == [(2, "ok"), (3, "ok")]
    finally:
        pool.close()


def test_a_worker_that_cannot_start_stops_the_search_with_its_error():
    nodes = {"space": {}, "dataset": {"_target_": "no_such_module.Data"}, "trainer": {}}
    pool = LocalPool(1, nodes, start_method="spawn")
    try:
        pool.submit(Task(0, "a", 1))
        with pytest.raises(SearchError, match="could not start.*no_such_module"):
            pool.wait()
    finally:
        pool.close()


# ------------------------------------------------------------------------------ submitit
@pytest.mark.slow
def test_submitit_executor_trains_each_candidate_as_a_job(tmp_path):
    """submitit's local cluster stands in for SLURM: the same executor, jobs as processes."""
    done = subprocess.run(_command(tmp_path, "surrogate=random", "search.budget=6", "search.workers=2",
                                   "search.executor=submitit", "search.submitit.cluster=local",
                                   "search.submitit.poll_s=0.5", "search.submitit.gpus_per_node=0"),
                          env=_env(), capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = run_dir_for(tmp_path / "search", search_config("surrogate=random", *ARM, output_dir=tmp_path))
    records = _check_complete(run_dir, 6)
    assert len(list((run_dir / "submitit").glob("*_result.pkl"))) == len(records)


@pytest.mark.slow
def test_spawned_workers_build_their_own_data(tmp_path):
    """The start method used with GPUs (each worker imports and loads its data), here on a CPU."""
    done = subprocess.run(_command(tmp_path, "surrogate=random", "search.budget=8", "search.workers=2",
                                   "search.worker_start=spawn"),
                          env=_env(), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_complete(run_dir_for(tmp_path / "search", search_config("surrogate=random", *ARM, output_dir=tmp_path)), 8)
