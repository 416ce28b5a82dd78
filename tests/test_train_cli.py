"""train.py: config composition (Compose API), architecture resolution, and real subprocess runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nas.training import TrainerConfig
from nas.training.cli import ArchitectureError, best_archive_entry, resolve_architecture, train

ROOT = Path(__file__).resolve().parents[1]
SMALL = "routing[im2col(4,4,0), computation<linear(16)>, col2im]"
TINY_DATA = ["dataset.n_train=256", "dataset.n_valid=256", "dataset.n_test=256"]


def _compose(overrides=(), hydra_config=False):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_config)


@pytest.fixture(scope="module")
def space():
    from nas.space import EinSpace

    return EinSpace(input_shape=(3, 16, 16))


# ---------------------------------------------------------------------------- composition
def test_train_yaml_defaults():
    cfg = _compose()
    assert cfg.dataset.name == "mini_addnist" and cfg.arch == "resnet18" and cfg.run is None
    assert cfg.seed == 0 and cfg.space._target_ == "nas.space.EinSpace"
    assert list(cfg.space.input_shape) == list(cfg.dataset.input_shape)
    assert cfg.logger._target_ == "nas.logging.WandbRunLogger" and cfg.logger.mode == "offline"
    trainer = instantiate(cfg.trainer)
    assert isinstance(trainer, TrainerConfig)
    assert trainer == TrainerConfig(max_epochs=16, mode="search", memory_limit_mb="auto")
    assert cfg.paths.output_dir == "outputs"


def test_final_trainer_and_epoch_override():
    final = instantiate(_compose(["trainer=final"]).trainer)
    assert (final.mode, final.max_epochs, final.lr, final.momentum, final.weight_decay) == (
        "final", 64, 0.04, 0.9, 3e-4)
    assert final.forward_time_limit_s is None and final.memory_limit_mb is None and final.time_budget_s is None
    assert instantiate(_compose(["trainer=final", "trainer.max_epochs=2"]).trainer).max_epochs == 2
    assert instantiate(_compose(["trainer.max_epochs=3"]).trainer).max_epochs == 3


@pytest.mark.parametrize("logger", ["wandb", "csv", "none"])
def test_logger_options_compose(logger):
    assert _compose([f"logger={logger}"]).logger._partial_ is True


def test_run_dir_pattern():
    cfg = _compose(["dataset=mini_multnist"], hydra_config=True)
    run_dir = OmegaConf.select(cfg, "hydra.run.dir")
    assert run_dir.startswith("outputs/train/mini_multnist/")
    fine_tune = OmegaConf.select(_compose(["task=surrogate", "target=addnist"], hydra_config=True), "hydra.run.dir")
    assert fine_tune.startswith("outputs/train/surrogate/lm-addnist/")
    single = OmegaConf.select(_compose(["task=surrogate", "surrogate=bert"], hydra_config=True), "hydra.run.dir")
    assert single.startswith("outputs/train/surrogate/bert-single/")
    assert OmegaConf.select(cfg, "hydra.job.chdir") is False


def test_unknown_trainer_option_fails():
    with pytest.raises(Exception, match="trainer"):
        _compose(["trainer=nope"])


# ---------------------------------------------------------------------------- architecture
def test_resolve_seed_string_and_file(space, tmp_path):
    arch, source = resolve_architecture(space, "resnet18")
    assert source == {"kind": "seed", "name": "resnet18"} and arch == space.seed("resnet18")
    arch, source = resolve_architecture(space, SMALL)
    assert source["kind"] == "string" and arch.short_string == space.parse(SMALL).short_string
    long_arch, _ = resolve_architecture(space, arch.long_string)
    assert long_arch.long_string == arch.long_string
    (tmp_path / "a.txt").write_text(arch.long_string + "\n")
    assert resolve_architecture(space, f"@{tmp_path / 'a.txt'}")[0].long_string == arch.long_string


def test_resolve_errors_are_clean(space, tmp_path):
    with pytest.raises(ArchitectureError, match="known seeds: .*resnet18.*vit"):
        resolve_architecture(space, "resnet19")
    with pytest.raises(ArchitectureError, match="cannot parse arch.*position"):
        resolve_architecture(space, "routing[im2col(4,4,0), computation<linear(16)>")
    with pytest.raises(ArchitectureError, match="no architecture"):
        resolve_architecture(space, "  ")
    with pytest.raises(ArchitectureError, match="cannot read"):
        resolve_architecture(space, f"@{tmp_path / 'missing.txt'}")
    with pytest.raises(ArchitectureError, match="no archive"):
        resolve_architecture(space, None, run=str(tmp_path))


def _write_archive(run_dir: Path, space) -> list[dict]:
    small = space.parse(SMALL).long_string
    entries = [
        {"iteration": 0, "arch": space.seed("resnet18").long_string, "val_acc": 0.9, "status": "nan"},
        {"iteration": 1, "arch": small, "val_acc": 0.4, "status": "ok"},
        {"iteration": 2, "arch": space.seed("vit").long_string, "val_acc": 0.3, "status": "ok"},
        {"iteration": 3, "arch": space.seed("mlpmixer").long_string, "val_acc": 0.4, "status": "ok"},
    ]
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(e) for e in entries] + ['{"iteration": 4, "arch": "torn']
    (run_dir / "archive.jsonl").write_text("\n".join(lines) + "\n")
    return entries


def test_best_ok_entry_of_a_search_run(space, tmp_path):
    entries = _write_archive(tmp_path, space)
    with pytest.warns(UserWarning, match="skipped 1"):
        best = best_archive_entry(tmp_path)
    assert best == entries[1]  # highest ok val_acc, earliest on ties; failed entries ignored
    with pytest.warns(UserWarning):
        arch, source = resolve_architecture(space, "ignored", run=str(tmp_path))
    assert arch.long_string == entries[1]["arch"]
    assert source == {"kind": "run", "run": str(tmp_path), "iteration": 1, "search_val_acc": 0.4}
    (tmp_path / "archive.jsonl").write_text(json.dumps(entries[0]) + "\n")
    with pytest.raises(ArchitectureError, match="no candidate with status 'ok'"):
        best_archive_entry(tmp_path)


def test_train_in_process_from_a_run_dir(space, tmp_path):
    search_dir = tmp_path / "search"
    _write_archive(search_dir, space)
    cfg = _compose(["logger=csv", f"run={search_dir}", "trainer.max_epochs=1", *TINY_DATA])
    with pytest.warns(UserWarning):
        result = train(cfg, run_dir=tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert on_disk == result
    assert result["status"] == "ok" and result["metric"] == "val_acc" and 0 <= result["val_acc"] <= 1
    assert result["arch"]["source"]["iteration"] == 1
    assert result["arch"]["long"] == space.parse(SMALL).long_string
    assert result["config"]["run"] == str(search_dir)
    rows = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val/acc"] == result["val_acc"] and rows[-1]["epoch"] == 1


def test_nan_in_epoch_2_result_keeps_epoch_1_accuracy_and_says_why(tmp_path, monkeypatch):
    from nas.training.module import CandidateModule

    original = CandidateModule.training_step

    def nan_from_epoch_2(self, batch, batch_idx):
        x, y = batch
        return original(self, (x * float("nan") if self.current_epoch >= 1 else x, y), batch_idx)

    monkeypatch.setattr(CandidateModule, "training_step", nan_from_epoch_2)
    cfg = _compose(["logger=csv", f"arch='{SMALL}'", "trainer.max_epochs=3", *TINY_DATA])
    result = train(cfg, run_dir=tmp_path)
    assert json.loads((tmp_path / "result.json").read_text()) == result
    assert result["status"] == "ok" and result["epochs"] == 1 and 0 <= result["val_acc"] <= 1
    assert result["reason"] == result["record"]["reason"] == (
        "non-finite training loss (nan) at epoch 2, step 1: val_acc is that after epoch 1 "
        "(nan_policy=previous_epoch)")
    assert result["record"]["nan_epoch"] == 2 and result["record"]["history"][0]["val_acc"] == result["val_acc"]
    assert result["config"]["trainer"]["nan_policy"] == "previous_epoch"

    cfg = _compose(["logger=csv", f"arch='{SMALL}'", "trainer.max_epochs=3", "trainer.nan_policy=fail", *TINY_DATA])
    result = train(cfg, run_dir=tmp_path / "fail")
    assert result["status"] == "nan" and result["val_acc"] is None and result["record"]["nan_epoch"] == 2
    assert result["reason"] == "non-finite training loss (nan) at epoch 2, step 1"


# ---------------------------------------------------------------------------- subprocess
def _run(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    cmd = [sys.executable, "train.py", f"hydra.run.dir={tmp_path}", "trainer.max_epochs=1",
           *TINY_DATA, *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _result(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "result.json").read_text())


def test_cli_seed_name(tmp_path):
    proc = _run(tmp_path, "arch=resnet18", "logger=csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = _result(tmp_path)
    assert result["status"] == "ok" and result["arch"]["source"] == {"kind": "seed", "name": "resnet18"}
    assert result["arch"]["num_params"] > 10_000_000 and result["epochs"] == 1
    assert result["arch"]["long"].startswith("sequential[") and result["arch"]["short"]
    assert result["config"]["trainer"]["max_epochs"] == 1
    assert (tmp_path / "metrics.jsonl").exists() and (tmp_path / "summary.json").exists()
    assert "ok  val_acc=" in proc.stdout


def test_cli_string_and_final(tmp_path):
    proc = _run(tmp_path, f"arch='{SMALL}'", "trainer=final", "logger=wandb", "seed=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = _result(tmp_path)
    assert result["status"] == "ok" and result["mode"] == "final" and result["metric"] == "test_acc"
    assert 0 <= result["test_acc"] <= 1 and result["record"]["val_acc"] is None
    assert result["seed"] == 3 and result["arch"]["source"] == {"kind": "string"}
    assert result["config"]["trainer"]["max_epochs"] == 1  # trainer.max_epochs overrides final's 64


def test_cli_bad_arch_string(tmp_path):
    proc = _run(tmp_path, "arch='routing[im2col(4,4,0), computation<linear(16)>'", "logger=none")
    assert proc.returncode != 0
    assert "cannot parse arch" in proc.stderr and "position" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "result.json").exists()


def test_cli_unknown_seed(tmp_path):
    proc = _run(tmp_path, "arch=resnet19", "logger=none")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "unknown seed architecture 'resnet19'" in proc.stderr
    assert all(name in proc.stderr for name in ("resnet18", "wideresnet16_4", "vit", "mlpmixer"))


def test_cli_unknown_dataset_lists_options(tmp_path):
    proc = _run(tmp_path, "dataset=nope", "logger=none")
    assert proc.returncode != 0 and "mini_addnist" in proc.stderr and "dataset/nope" in proc.stderr


def test_cli_failed_candidate_exits_nonzero_with_a_result(tmp_path):
    proc = _run(tmp_path, f"arch='{SMALL}'", "trainer.forward_time_limit_s=1e-9", "logger=none")
    assert proc.returncode == 1
    result = _result(tmp_path)
    assert result["status"] == "too_slow" and result["val_acc"] is None and "reason:" in proc.stdout
    assert "trainer.forward_time_limit_s=null lifts it" in proc.stdout  # the override that lifts it


def _search_run_with_config(space, run_dir: Path) -> None:
    """A search run dir as the runner leaves it: archive plus experiment.json (mini_multnist, 512
    training images, a memory limit of its own)."""
    from nas.search.identity import experiment_config

    _write_archive(run_dir, space)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        search = compose("search", overrides=["dataset=mini_multnist", "dataset.n_train=512", "dataset.n_valid=256",
                                              "dataset.n_test=256", "space.mem_limit_mb=1234"])
    (run_dir / "experiment.json").write_text(json.dumps(experiment_config(search), default=str))


def test_train_from_a_run_uses_the_runs_dataset_and_space(space, tmp_path):
    search_dir = tmp_path / "search"
    _search_run_with_config(space, search_dir)
    cfg = _compose(["logger=none", f"run={search_dir}", "trainer.max_epochs=1"])  # default dataset: mini_addnist
    with pytest.warns(UserWarning, match="skipped 1"):
        result = train(cfg, run_dir=tmp_path / "out")
    assert result["status"] == "ok"
    assert result["config"]["dataset"]["name"] == "mini_multnist" and result["config"]["dataset"]["n_train"] == 512
    assert result["config"]["space"]["mem_limit_mb"] == 1234


def test_train_from_a_run_refuses_another_dataset_on_the_command_line(space, tmp_path):
    search_dir = tmp_path / "search"
    _search_run_with_config(space, search_dir)
    proc = _run(tmp_path / "out", f"run={search_dir}", "dataset=mini_addnist", "logger=none")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "searched on dataset 'mini_multnist'" in proc.stderr and "dataset=mini_addnist (to train" in proc.stderr
    assert not (tmp_path / "out" / "result.json").exists()
