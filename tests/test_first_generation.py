"""The shared first generation's file and lock: exclusive publication, waiting, stale owners."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from nas.search.first_generation import (
    FirstGenerationLock,
    FirstGenerationTimeout,
    first_generation_path,
    publish,
    wait_for,
)


def test_the_path_is_built_from_the_experiment_not_the_run_dir(tmp_path):
    path = first_generation_path(tmp_path, "addnist", 42, 100, "abc123")
    assert path == tmp_path / "first_generation" / "addnist" / "seed=42-pop=100-abc123.json"


def test_publish_never_replaces_a_finished_file(tmp_path):
    target = tmp_path / "fg.json"
    assert publish(target, {"records": [1]}) is True
    assert publish(target, {"records": [2]}) is False
    assert json.loads(target.read_text()) == {"records": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["fg.json"]  # no temporary left behind


def test_one_lock_holder_and_waiters_load_what_it_publishes(tmp_path):
    target = tmp_path / "fg.json"
    owner, waiter = FirstGenerationLock(target, stale_s=60), FirstGenerationLock(target, stale_s=60)
    assert owner.try_acquire() and not waiter.try_acquire()
    told = []
    threading.Timer(0.5, lambda: (publish(target, {"ok": True}), owner.release())).start()
    assert wait_for(target, waiter, wait_s=30, poll_s=0.05, on_wait=told.append) is True
    assert told and told[0]["pid"] == os.getpid()
    assert not waiter.held and not waiter.path.exists()


def test_a_lock_whose_process_ended_is_taken_over(tmp_path):
    target = tmp_path / "fg.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = FirstGenerationLock(target, stale_s=3600)
    lock.path.write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout), "since": 0}))
    assert wait_for(target, lock, wait_s=5, poll_s=0.05) is False  # this process trains it now
    assert lock.held and json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock.path.exists()


def test_a_lock_without_heartbeat_is_taken_over_and_a_live_one_times_out(tmp_path):
    target = tmp_path / "fg.json"
    other = {"host": "another-node", "pid": 1, "since": 0}
    lock = FirstGenerationLock(target, stale_s=3600)
    lock.path.write_text(json.dumps(other))
    with pytest.raises(FirstGenerationTimeout, match="search.first_generation=null"):
        wait_for(target, lock, wait_s=0.2, poll_s=0.05)
    old = time.time() - 7200
    os.utime(lock.path, (old, old))  # its owner stopped refreshing it two hours ago
    assert wait_for(target, lock, wait_s=5, poll_s=0.05) is False and lock.held
    lock.release()


def test_a_requeued_slurm_job_takes_its_own_lock_back_at_once(tmp_path, monkeypatch):
    """A preempted job comes back on another node with the same SLURM job id: its old lock (live
    heartbeat, foreign host) is its own; another job's lock is not."""
    target = tmp_path / "fg.json"
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    lock = FirstGenerationLock(target, stale_s=3600)
    lock.path.write_text(json.dumps({"host": "another-node", "pid": 1, "since": 0, "job": "slurm:9999"}))
    assert not lock.try_acquire()  # a live lock of another job
    lock.path.write_text(json.dumps({"host": "another-node", "pid": 1, "since": 0, "job": "slurm:4242"}))
    assert lock.try_acquire() and json.loads(lock.path.read_text())["job"] == "slurm:4242"
    lock.release()
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    lock.path.write_text(json.dumps({"host": "another-node", "pid": 1, "since": 0, "job": "slurm:77_3"}))
    assert lock.try_acquire()
    lock.release()
