"""Launchers without launching: job -> GPU mapping, threads per job, the conf/local override, and
the comparable fields of a search run's summary. The multiruns themselves: test_launchers_multirun.py."""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

import nas.device as device
from nas.device import JobResources, gpu_for_job, launcher_threads, resolve_device

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


# ------------------------------------------------------------------------- job -> GPU
@pytest.mark.parametrize(("job", "n_gpus", "gpu"), [
    (0, 1, 0), (5, 1, 0), (0, 2, 0), (1, 2, 1), (2, 2, 0), (3, 2, 1),
    (7, 4, 3), (8, 4, 0), (13, 8, 5), (0, 0, None), (3, 0, None),
])
def test_job_i_gets_gpu_i_mod_n(job, n_gpus, gpu):
    assert gpu_for_job(job, n_gpus) == gpu


def test_parallel_jobs_spread_over_the_gpus():
    """n jobs on n GPUs: every GPU once; 2n jobs: every GPU twice."""
    for n in (1, 2, 3, 8):
        assert sorted(gpu_for_job(i, n) for i in range(n)) == list(range(n))
        assert sorted(gpu_for_job(i, n) for i in range(2 * n)) == sorted(list(range(n)) * 2)


def test_negative_job_number_is_refused():
    with pytest.raises(ValueError):
        gpu_for_job(-1, 2)


@pytest.fixture
def fake_gpus(monkeypatch):
    """``n`` fake GPUs (CUDA_VISIBLE_DEVICES unset): torch.cuda answers as if they were there;
    returns the list of set_device calls."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    calls: list[int] = []
    state = {"current": 0}

    def install(n: int) -> list[int]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: state["current"])

        def set_device(index):
            calls.append(index)
            state["current"] = index

        monkeypatch.setattr(torch.cuda, "set_device", set_device)
        return calls

    return install


@pytest.mark.parametrize(("job", "n_gpus", "expected"), [(0, 1, 0), (3, 1, 0), (1, 2, 1), (5, 4, 1), (6, 4, 2)])
def test_resolve_device_gives_the_job_its_gpu(fake_gpus, monkeypatch, job, n_gpus, expected):
    calls = fake_gpus(n_gpus)
    monkeypatch.setattr(device, "hydra_job_number", lambda: job)
    for request in ("auto", "gpu", "cuda"):
        assert resolve_device(request) == torch.device("cuda", expected)
    # the job's GPU becomes torch's current device (a bare "cuda" elsewhere lands there), once
    assert calls == ([expected] if expected != 0 else [])
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # an explicit index wins
    assert resolve_device("cpu") == torch.device("cpu")


def test_outside_hydra_the_current_device_is_kept(fake_gpus, monkeypatch):
    calls = fake_gpus(4)
    monkeypatch.setattr(device, "hydra_job_number", lambda: None)
    assert resolve_device("auto") == torch.device("cuda", 0) and calls == []


def test_without_gpus_auto_is_the_cpu(fake_gpus, monkeypatch):
    fake_gpus(0)
    monkeypatch.setattr(device, "hydra_job_number", lambda: 3)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("gpu")


def _search_cfg(overrides=(), return_hydra_config=True):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("search", overrides=list(overrides), return_hydra_config=return_hydra_config)


@pytest.fixture
def hydra_job():
    """Set HydraConfig as a job of a multirun would (``num``: None = a single run), restore it after."""
    saved = HydraConfig.instance().cfg

    def make(num: int | None, overrides=()):
        cfg = _search_cfg(overrides)
        if num is not None:
            with open_dict(cfg):
                cfg.hydra.job.num = num
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield make
    HydraConfig.instance().cfg = saved


def test_hydra_job_number(hydra_job):
    hydra_job(None)
    assert device.hydra_job_number() == 0  # a single run is job 0
    hydra_job(6)
    assert device.hydra_job_number() == 6
    assert device.job_gpu(4) == 2 and device.job_gpu(0) is None


# ---------------------------------------------------------------------------- threads
@pytest.mark.parametrize(("launcher", "threads"), [
    ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, None),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}, 1),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": -1}, 1),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 1}, None),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
      "cpus_per_task": None}, 1),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
      "cpus_per_task": 4}, 4),
    (None, None),
])
def test_threads_per_job_follow_the_launcher(launcher, threads):
    assert launcher_threads(None if launcher is None else OmegaConf.create(launcher)) == threads


def test_callback_limits_a_parallel_job_to_one_thread(monkeypatch, fake_gpus, caplog):
    set_devices = fake_gpus(2)
    monkeypatch.setattr(device, "hydra_job_number", lambda: 3)
    limited: list[int] = []
    monkeypatch.setattr(device, "limit_threads", limited.append)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    joblib = OmegaConf.create({"hydra": {"launcher": {
        "_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}}})
    basic = OmegaConf.create({"hydra": {"launcher": {"_target_": "BasicLauncher"}}})
    with caplog.at_level("INFO", logger="nas.device"):
        JobResources().on_job_start(config=joblib)
        JobResources().on_job_start(config=basic)  # one job at a time: untouched
        JobResources(threads=3).on_job_start(config=basic)  # explicit: every job
        JobResources(threads=None).on_job_start(config=joblib)  # off
    assert limited == [1, 3]
    assert set_devices == [1]  # job 3 of a parallel sweep on GPU 3 mod 2, before the task starts
    assert "job 3: 1 thread(s), GPU cuda:1 of 2" in caplog.text


def test_limit_threads_sets_torch_and_the_environment(monkeypatch):
    for name in device.THREAD_VARIABLES:
        monkeypatch.setenv(name, "4")
    before = torch.get_num_threads()
    try:
        device.limit_threads(1)
        assert torch.get_num_threads() == 1
        assert all(os.environ[name] == "1" for name in device.THREAD_VARIABLES)
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ configs: callbacks, local
def test_search_and_train_register_the_callback():
    for name in ("search", "train"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(name, return_hydra_config=True)
        assert cfg.hydra.callbacks.job_resources._target_ == "nas.device.JobResources"


def test_local_override_sets_the_launcher(tmp_path):
    """A conf/local file (here from another config dir, as a user's git-ignored one) chooses the
    launcher and its resources; without one nothing changes."""
    assert _search_cfg().hydra.launcher._target_.endswith("BasicLauncher")
    cfg = _search_cfg(["local=example_slurm"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min, launcher.mem_gb) == ("gpu", 1, 1440, 32)
    assert launcher.max_num_timeout > 0  # requeued on time-out: the searches resume
    local = tmp_path / "local"
    local.mkdir()
    (local / "mine.yaml").write_text("# @package _global_\ndefaults:\n  - override /hydra/launcher: joblib\n"
                                     "hydra:\n  launcher:\n    n_jobs: 3\n")
    cfg = _search_cfg([f"hydra.searchpath=[file://{tmp_path}]", "local=mine"])
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 3
    assert _search_cfg(["local=example_joblib"]).hydra.launcher.n_jobs == 2
    # conf/local/default.yaml is loaded when it exists; '~local' leaves it out for one command
    (local / "default.yaml").write_text((CONF / "local" / "example_slurm.yaml").read_text())
    search_path = f"hydra.searchpath=[file://{tmp_path}]"
    assert _search_cfg([search_path]).hydra.launcher._target_.endswith("SlurmLauncher")
    assert _search_cfg([search_path, "~local"]).hydra.launcher._target_.endswith("BasicLauncher")


def test_local_files_are_git_ignored_except_the_examples():
    paths = ["conf/local/default.yaml", "conf/local/my_cluster.yaml", "conf/local/example_slurm.yaml",
             "conf/local/example_joblib.yaml", "conf/local/README.md"]
    try:
        out = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("git is not installed")
    if out.returncode > 1:  # 0: some ignored, 1: none, 128: not a git work tree
        pytest.skip(f"not a git work tree: {out.stderr.strip()}")
    assert out.stdout.split() == paths[:2]


# ------------------------------------------------------------------------ run summary
def _records():
    rec = {"status": "ok", "origin": "mutation", "seconds": {}}
    return [{**rec, "index": 0, "val_acc": 0.2, "prediction": None},
            {**rec, "index": 1, "val_acc": 0.5, "prediction": 0.1},
            {**rec, "index": 2, "val_acc": 0.3, "prediction": 0.3},
            {**rec, "index": 3, "val_acc": 0.4, "prediction": 0.2},
            {"status": "nan", "index": 4, "val_acc": None, "prediction": 0.9, "seconds": {}}]


def test_run_summary_carries_the_fields_to_compare_arms(tmp_path):
    from nas.search.reporting import identity_summary, record_test_accuracy, result_summary
    from nas.search.run_dir import RESULT

    cfg = _search_cfg(["dataset=mini_multnist", "surrogate=random", "seed=3", "logger=csv"],
                      return_hydra_config=False)
    assert identity_summary(cfg) == {"dataset": "mini_multnist", "arm": "surrogate_evolution-random-none",
                                     "strategy": "surrogate_evolution", "surrogate": "random",
                                     "encoding": "none", "seed": 3}
    results = result_summary(_records(), tmp_path)
    # τ over the ok candidates with a prediction: (0.1, 0.5), (0.3, 0.3), (0.2, 0.4): fully discordant
    assert results == {"best_val_acc": 0.5, "kendall_tau": pytest.approx(-1.0), "tau_pairs": 3, "test_acc": None}
    assert math.isnan(result_summary(_records()[:1], tmp_path)["kendall_tau"])  # no predictions (None in W&B)

    # a finished search (csv logger), then its final retraining: the summary gets test_acc
    from nas.logging import create_logger

    config = OmegaConf.to_container(cfg, resolve=True)
    logger = create_logger(cfg.logger, run_dir=str(tmp_path), job_type="search", name="x", config=config)
    logger.summary({**identity_summary(cfg), **results})
    logger.finish()
    (tmp_path / RESULT).write_text(json.dumps({"config": config}))
    assert record_test_accuracy(tmp_path) is None  # no final retraining yet
    assert json.loads((tmp_path / "summary.json").read_text())["test_acc"] is None
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / RESULT).write_text(json.dumps({"status": "ok", "test_acc": 0.625}))
    assert record_test_accuracy(tmp_path) == 0.625
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {k: summary[k] for k in ("dataset", "arm", "seed", "best_val_acc", "test_acc", "kendall_tau")} == {
        "dataset": "mini_multnist", "arm": "surrogate_evolution-random-none", "seed": 3,
        "best_val_acc": 0.5, "test_acc": 0.625, "kendall_tau": pytest.approx(-1.0)}
