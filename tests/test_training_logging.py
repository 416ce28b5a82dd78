"""nas.logging: one run logger (W&B / disk / none); everything logged is also on disk."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from nas.logging import (
    DiskLogger,
    NullLogger,
    RunLogger,
    WandbRunLogger,
    atomic_write_text,
    create_logger,
    to_jsonable,
)

CONF = Path(__file__).resolve().parents[1] / "conf" / "logger"


def _exercise(logger: RunLogger) -> None:
    try:
        logger.define_metric("search/*", step_metric="search/iteration")
        logger.log({"train/loss": 1.5, "epoch": 1, "bad": float("nan")}, step=1)
        logger.log({"train/loss": np.float32(0.5), "epoch": 2, "val/acc": torch.tensor(0.25)}, step=2)
        logger.summary({"val/acc": 0.25})
        logger.summary({"status": "ok"})
        logger.table("predicted vs true", pd.DataFrame({"predicted": [0.1, 0.2], "true": [0.3, 0.4]}))
    finally:
        logger.finish()


def _assert_on_disk(run_dir: Path) -> None:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["_step"] for r in rows] == [1, 2]
    assert rows[0]["bad"] is None and rows[1]["train/loss"] == 0.5 and rows[1]["val/acc"] == 0.25
    csv = pd.read_csv(run_dir / "metrics.csv")
    assert list(csv["epoch"]) == [1, 2] and "val/acc" in csv.columns
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["val/acc"] == 0.25 and summary["status"] == "ok"
    assert summary["_run"]["job_type"] == "train"
    table = pd.read_csv(run_dir / "tables" / "predicted_vs_true.csv")
    assert list(table.columns) == ["predicted", "true"] and len(table) == 2


def test_disk_logger_writes_everything(tmp_path):
    logger = DiskLogger(tmp_path / "run", job_type="train", group="g", name="n")
    _exercise(logger)
    _assert_on_disk(tmp_path / "run")
    logger.log({"late": 1}, step=3)  # after finish: ignored, no crash
    logger.finish()  # idempotent
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


def test_wandb_logger_disabled_still_writes_to_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    logger = WandbRunLogger(tmp_path, job_type="train", mode="online")  # env wins over config
    assert logger.mode == "disabled"
    _exercise(logger)
    _assert_on_disk(tmp_path)
    assert logger.run is None and logger.finished
    assert not list(tmp_path.glob("wandb/offline-run-*"))


def test_wandb_logger_offline_creates_a_local_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbRunLogger(tmp_path, job_type="train", group="sweep-1", name="x", config={"a": 1})
    _exercise(logger)
    _assert_on_disk(tmp_path)
    runs = list(tmp_path.glob("wandb/offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_null_logger_writes_nothing(tmp_path):
    logger = NullLogger(tmp_path / "run", job_type="train")
    _exercise(logger)
    assert not (tmp_path / "run").exists()
    with RunLogger() as base:
        base.log({"a": 1})
    assert base.finished


@pytest.mark.parametrize("name, cls", [("wandb", WandbRunLogger), ("csv", DiskLogger), ("none", NullLogger)])
def test_every_logger_config_instantiates(tmp_path, name, cls):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert cfg._partial_ is True  # the entry point fills in run_dir, job_type, name, config
    job_config = {"dataset": {"_target_": "nas.data.MiniDigitsDataModule"}, "seed": 0}
    logger = create_logger(cfg, run_dir=tmp_path, job_type="train", name="r", group="sweep",
                           config=job_config)
    try:
        assert type(logger) is cls and logger.job_type == "train" and logger.group == "sweep"
        assert logger.config == job_config  # `_target_`s inside the job config are left alone
    finally:
        logger.finish()


def test_wandb_config_is_offline_by_default():
    assert OmegaConf.load(CONF / "wandb.yaml").mode == "offline"


def test_config_group_wins_over_runtime_default(tmp_path):
    cfg = OmegaConf.load(CONF / "csv.yaml")
    cfg.group = "my_sweep"
    logger = create_logger(cfg, run_dir=tmp_path, job_type="search", group=None, tags=None)
    assert logger.group == "my_sweep" and logger.tags == []
    logger.finish()
    assert isinstance(create_logger(None, run_dir=tmp_path), NullLogger)


def test_to_jsonable_and_atomic_write(tmp_path):
    value = {"a": np.int64(3), "b": [np.float64(math.inf), torch.tensor([1.0, 2.0])], "c": tmp_path, 1: None}
    assert to_jsonable(value) == {"a": 3, "b": [None, [1.0, 2.0]], "c": str(tmp_path), "1": None}
    target = tmp_path / "sub" / "x.json"
    atomic_write_text(target, "{}")
    atomic_write_text(target, '{"v": 1}')
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]  # no temp files left
