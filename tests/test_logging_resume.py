"""A resumed run dir is one W&B run (id kept in <run_dir>/wandb_run_id) and its disk logs append."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nas.logging import (
    LOGGER_OUTPUTS,
    WANDB_RUN_ID_FILE,
    DiskLogger,
    WandbRunLogger,
    merge_rows_by_step,
)
from nas.logging.wandb_history import wandb_history_steps

REPO = Path(__file__).resolve().parents[1]


def _lifetime(run_dir: Path, steps: range, value: float, **kwargs) -> tuple[str, WandbRunLogger]:
    """One start of a search: define the axis, log candidate + refit rows per step, a table, finish."""
    logger = WandbRunLogger(run_dir, job_type="search", name="mini/re-rf-zcp/seed=0", config={"seed": 0}, **kwargs)
    try:
        run_id = logger.run.id if logger.run is not None else None
        logger.define_metric("search/*", step_metric="search/iteration")
        for step in steps:
            logger.log({"search/iteration": step, "search/val_acc": value + step}, step=step)
            logger.log({"search/iteration": step, "surrogate/n_train": step}, step=step)
            logger.table(f"predicted_vs_true_it{step}", pd.DataFrame({"prediction": [0.1], "val_acc": [0.2]}))
        logger.summary({"best_val_acc": value})
    finally:
        logger.finish()
    return run_id, logger


def _jsonl(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_lifetimes_of_one_run_dir_are_one_offline_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = tmp_path / "run"
    first_id, first = _lifetime(run_dir, range(0, 4), 0.0)
    stored = (run_dir / WANDB_RUN_ID_FILE).read_text().strip()
    assert first_id == stored == first.run_id and not first.resumed
    # killed after logging step 3 but before its checkpoint: the resumed search redoes step 3
    second_id, second = _lifetime(run_dir, range(3, 6), 10.0)
    assert second_id == stored and second.resumed and second.previous_step == 3
    assert (run_dir / WANDB_RUN_ID_FILE).read_text().strip() == stored

    # wandb 0.31 offline: one folder per start, each named and holding files of the same run id
    folders = sorted(run_dir.glob("wandb/offline-run-*"))
    assert len(folders) == 2
    assert all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{stored}(-\d+)?", f.name) for f in folders)
    assert all((f / f"run-{stored}.wandb").is_file() for f in folders)
    assert second._skipped_steps == [3, 3, 3]  # the redone step's two rows and table: disk only

    # disk: metrics.jsonl appends (the redone step twice), metrics.csv keeps one row per step, last wins
    assert [r["_step"] for r in _jsonl(run_dir)] == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5]
    csv = pd.read_csv(run_dir / "metrics.csv")
    assert list(csv["_step"]) == [0, 1, 2, 3, 4, 5]
    assert list(csv["search/val_acc"]) == [0.0, 1.0, 2.0, 13.0, 14.0, 15.0]
    assert list(csv["surrogate/n_train"]) == [0, 1, 2, 3, 4, 5]
    assert json.loads((run_dir / "summary.json").read_text())["best_val_acc"] == 10.0
    # everything the logger wrote is listed for a restart to move aside
    assert {p.name for p in run_dir.iterdir()} <= set(LOGGER_OUTPUTS)


KILLED_START = """
import os, signal, sys
from nas.logging import WandbRunLogger
logger = WandbRunLogger(sys.argv[1], job_type="search", name="killed")
logger.define_metric("search/*", step_metric="search/iteration")
for step in range(3):
    logger.log({"search/iteration": step, "search/val_acc": step / 10}, step=step)
os.kill(os.getpid(), signal.SIGKILL)  # no finish: what a kill -9 or an OOM kill leaves
"""


def test_a_killed_offline_start_loses_nothing_in_wandb(tmp_path, monkeypatch):
    """wandb-core writes its .wandb file every 15 s: a start killed sooner leaves W&B without its rows.
    The next start reads what the earlier .wandb files hold and re-sends the rest from metrics.jsonl."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = tmp_path / "run"
    # its own wandb-core, as a search.py process has (WANDB_SERVICE would share this process's one,
    # which then keeps the killed run's id "in use")
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    proc = subprocess.run([sys.executable, "-c", KILLED_START, str(run_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [r["_step"] for r in _jsonl(run_dir)] == [0, 1, 2]  # the disk has every row
    (killed,) = run_dir.glob("wandb/offline-run-*/*.wandb")
    held = wandb_history_steps(killed)
    assert held != [0, 1, 2]  # wandb had not flushed (all of) them

    _, second = _lifetime(run_dir, range(2, 4), 10.0)  # resumes; redoes step 2
    assert second.resumed and second.backfilled == [s for s in (0, 1, 2) if s not in held]
    files = sorted(run_dir.glob("wandb/offline-run-*/*.wandb"))
    assert len(files) == 2 and {f.name for f in files} == {f"run-{second.run_id}.wandb"}
    steps = [s for f in files for s in wandb_history_steps(f)]
    assert sorted(set(steps)) == [0, 1, 2, 3] and steps == sorted(steps)  # all of it, in order, once


class _FakeRun:
    """What WandbRunLogger uses of a wandb run; ``starting_step`` is what an online resume reports."""

    starting_step = 0

    def __init__(self, **init):
        self.init, self.id, self.logged = init, init["id"], []
        self.summary: dict = {}

    def log(self, row, step=None):
        self.logged.append((step, sorted(row)))

    def define_metric(self, *args, **kwargs):
        pass

    def finish(self):
        pass


@pytest.fixture
def fake_wandb(monkeypatch):
    import wandb

    class Runs(list):
        next_starting_step = 0

    runs = Runs()

    def init(**kwargs):
        runs.append(_FakeRun(**kwargs))
        runs[-1].starting_step = runs.next_starting_step
        return runs[-1]

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb, "init", init)
    return runs


def test_a_fresh_run_dir_gets_a_new_id_and_each_start_resumes_it(tmp_path, fake_wandb):
    _lifetime(tmp_path / "a", range(0, 2), 0.0)
    fake_wandb.next_starting_step = 2  # the server holds steps 0 and 1
    _lifetime(tmp_path / "a", range(1, 3), 0.0)
    fake_wandb.next_starting_step = 0
    _lifetime(tmp_path / "b", range(0, 2), 0.0)
    first, again, other = fake_wandb
    assert first.init["id"] == again.init["id"] != other.init["id"]
    assert all(run.init["resume"] == "allow" and run.init["dir"].endswith(name)
               for run, name in zip(fake_wandb, "aab", strict=True))
    assert (tmp_path / "b" / WANDB_RUN_ID_FILE).read_text().strip() == other.init["id"]
    # W&B's step only grows: the second start sends steps 2.. only (1 was logged before the restart)
    assert [step for step, _ in first.logged] == [0, 0, 0, 1, 1, 1]
    assert [step for step, _ in again.logged] == [2, 2, 2]
    assert [step for step, _ in other.logged] == [0, 0, 0, 1, 1, 1]


def test_rows_wandb_lost_are_sent_again(tmp_path, fake_wandb):
    """The first start was killed before wandb-core wrote anything: the second re-sends the disk rows."""
    _lifetime(tmp_path, range(0, 3), 0.0)
    _, logger = _lifetime(tmp_path, range(2, 4), 10.0)  # W&B holds nothing (starting_step 0, no .wandb files)
    assert logger.wandb_step is None and logger.backfilled == [0, 1, 2]
    sent = fake_wandb[-1].logged
    assert [step for step, _ in sent] == [0, 1, 2, 2, 2, 2, 3, 3, 3]  # step 2 again: it merges, redo wins
    assert sent[0][1] == ["search/iteration", "search/val_acc", "surrogate/n_train"]  # the merged disk row


def test_run_id_file_edge_cases(tmp_path, fake_wandb, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / WANDB_RUN_ID_FILE).write_text("not a/valid id\n")
    with pytest.warns(UserWarning, match="does not hold a W&B run id"):
        _, logger = _lifetime(run_dir, range(0, 1), 0.0)
    assert not logger.resumed and (run_dir / WANDB_RUN_ID_FILE).read_text().strip() == logger.run_id
    with pytest.warns(UserWarning, match="replaces the W&B run id"):
        _, explicit = _lifetime(run_dir, range(1, 2), 0.0, run_id="my-run_1")  # logger.run_id=... wins
    assert fake_wandb[-1].init["id"] == "my-run_1" and not explicit.resumed
    assert (run_dir / WANDB_RUN_ID_FILE).read_text().strip() == "my-run_1"
    (run_dir / "metrics.jsonl").unlink()  # the disk logs were moved aside (a restart): a new W&B run
    with pytest.warns(UserWarning, match="metrics.jsonl is gone"):
        _, fresh = _lifetime(run_dir, range(0, 1), 0.0)
    assert fresh.run_id != "my-run_1" and not fresh.resumed and fake_wandb[-1].logged[0][0] == 0
    with pytest.raises(ValueError, match="not a W&B run id"):
        WandbRunLogger(tmp_path / "bad", run_id="a/b")
    monkeypatch.setenv("WANDB_MODE", "disabled")  # no W&B run: no id is made
    WandbRunLogger(tmp_path / "off").finish()
    assert not (tmp_path / "off" / WANDB_RUN_ID_FILE).exists()


def test_a_torn_last_line_does_not_swallow_the_next_row(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"_step": 1, "a": 1}\n{"_step": 2, "a"')  # killed mid-write
    logger = DiskLogger(run_dir)
    assert logger.previous_step == 1
    logger.log({"a": 3}, step=3)
    logger.finish()
    assert list(pd.read_csv(run_dir / "metrics.csv")["_step"]) == [1, 3]


def test_a_start_that_logs_nothing_rewrites_nothing(tmp_path):
    logger = DiskLogger(tmp_path, job_type="search", name="n")
    logger.log({"a": 1}, step=0)
    logger.summary({"best": 0.5})
    logger.finish()
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()}
    DiskLogger(tmp_path, job_type="search", name="n").finish()  # e.g. rerunning a finished search
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()} == before


def test_merge_rows_by_step():
    rows = [{"_step": 0, "a": 1}, {"_step": None, "t": 1}, {"_step": 0, "b": 2}, {"_step": 1, "a": 3},
            {"_step": 0, "a": 5}]
    assert merge_rows_by_step(rows) == [{"_step": 0, "a": 5, "b": 2}, {"_step": None, "t": 1},
                                        {"_step": 1, "a": 3}]
