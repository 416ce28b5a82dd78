"""The phased pipeline (``python -m nas.pipeline``, behind multirun_sweeps/mini.sh and paper.sh).

One flow on the mini datasets with tiny settings (2 datasets x 1 seed, arms random/tr_rf/lm,
a tiny offline language model): phase 1 killed mid-run and relaunched, phase 3 refused before its
sources exist, then the whole pipeline to the report, and a rerun that has nothing to do. The
runner's commands run in-process (``--in-process``, the same Hydra commands without a new
interpreter each) to keep this fast; the killed run is a real process, killed with SIGKILL."""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nas.pipeline.__main__ import main as pipeline_main
from nas.pipeline.plan import PipelineError, product_groups, split_overrides
from nas.pipeline.runner import Command, language_model_missing, run_in_process

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
DATASETS = ["mini_addnist", "mini_multnist"]
SEARCH = ["dataset.image_size=8", "dataset.n_train=512", "dataset.n_valid=256", "dataset.n_test=256",
          "trainer.max_epochs=1", "search.budget=4", "strategy.population_size=3", "search.progress=false",
          "trainer.forward_time_limit_s=null", "trainer.time_budget_s=null", "trainer.memory_limit_mb=64",
          "strategy.n_sampled=4", "strategy.n_chosen=2"]
ARMS = {"random": "surrogate_evolution-random-none", "tr_rf": "surrogate_evolution-tr_rf-graf_zcp",
        "lm": "surrogate_evolution-lm-string"}  # rf is tr_rf without the transfer files: tested elsewhere


def _tiny_language_model(path: Path) -> Path:
    """A tiny offline encoder for the lm arm (2 layers, hidden 32), saved with save_pretrained."""
    from nas.space import EinSpace
    from surrogates.predictors.language_model import tiny_encoder

    space = EinSpace(input_shape=(3, 8, 8))
    model, tokenizer = tiny_encoder([space.sample(seed).long_string for seed in range(40)], hidden_size=32,
                                    num_layers=2, num_heads=2, max_length=512)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _args(out: Path, model_dir: Path, *options: str) -> list[str]:
    return ["--sweep", "t", "--datasets", ",".join(DATASETS), "--seeds", "0", "--arms", "tr_rf,lm", "--in-process",
            *options, *(f"search:{o}" for o in SEARCH), "final:trainer.max_epochs=1",
            "finetune:surrogate.offline_epochs=1", f"finetune,lm:surrogate.model_name_or_path={model_dir}",
            "finetune,lm:surrogate.device=cpu", "logger=none", f"paths.output_dir={out}"]


def _run(dataset: str, arm: str, out: Path) -> Path:
    return out / "multirun" / "t" / dataset / ARMS[arm] / "seed=0"


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """Phase 1 killed mid-run, relaunched; phase 3 tried too early; the whole pipeline; a rerun."""
    out = tmp_path_factory.mktemp("pipeline")
    model_dir = out / "tiny-lm"  # phase 1 does not read it: made while the killed process starts
    first, second = (_run(d, "random", out) for d in DATASETS)
    log = open(out / "killed.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "nas.pipeline", *_args(out, model_dir, "--phases", "1")], cwd=REPO,
                            env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # Meanwhile (the other core): the tiny model, and Lightning imported for the in-process phases.
    warm_up = threading.Thread(target=lambda: (_tiny_language_model(model_dir), importlib.import_module("lightning")))
    warm_up.start()
    try:  # kill the job on the second dataset in its first generation, the first one finished
        deadline = time.monotonic() + 300
        while not (second / "archive.jsonl").exists():
            assert proc.poll() is None and time.monotonic() < deadline, (out / "killed.log").read_text()[-3000:]
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        warm_up.join()
    state = {"out": out, "killed": {"first_result": (first / "result.json").is_file(),
                                    "second_result": (second / "result.json").exists(),
                                    "first_mtimes": (_mtime(first / "result.json"), _mtime(first / ".hydra" / "config.yaml"))}}
    state["relaunch"] = pipeline_main(_args(out, model_dir, "--phases", "1"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        state["too_early"] = (pipeline_main(_args(out, model_dir, "--phases", "3")), err.getvalue())
    (first / "final").mkdir()  # as an interrupted retraining leaves it: set aside, not overwritten
    (first / "final" / "train.log").write_text("killed\n")
    state["full"] = pipeline_main(_args(out, model_dir))
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        state["rerun"] = (pipeline_main(_args(out, model_dir, "--phases", "1,2,3,4")), said.getvalue())
    return state


def test_a_relaunch_after_a_kill_finishes_every_run_once(flow):
    out = flow["out"]
    first, second = (_run(d, "random", out) for d in DATASETS)
    assert flow["killed"]["first_result"] and not flow["killed"]["second_result"]
    assert flow["relaunch"] == 0
    # The finished run was not relaunched: its result and Hydra record are the ones of the first start.
    assert (_mtime(first / "result.json"), _mtime(first / ".hydra" / "config.yaml")) == flow["killed"]["first_mtimes"]
    for run in (first, second):
        result = json.loads((run / "result.json").read_text())
        records = [json.loads(line) for line in (run / "archive.jsonl").read_text().splitlines()]
        assert result["iterations"] == 4 == sum(r["iteration"] is not None for r in records)
        assert [r["index"] for r in records] == list(range(len(records)))  # each candidate once, none lost


def test_phase_3_waits_for_its_sources(flow, tmp_path):
    code, err = flow["too_early"]
    assert code == 1 and err.strip() == (
        "python -m nas.pipeline: error: phase 3 (tr_rf) needs phase 2's feature exports first: 2 missing "
        "(mini_addnist_seed=0.csv, mini_multnist_seed=0.csv); rerun without --phases (or with --phases 2,3)")
    # tr_rf alone, before its sources exist: one line naming the missing source dataset, nothing trained
    # (search.py as `python search.py ...` runs it, in this process: no second interpreter start-up).
    out = tmp_path / "alone"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_in_process(Command("search.py", [
            *SEARCH, "dataset=mini_addnist", "surrogate=tr_rf", f"surrogate.transfer_dir={out / 'transfer'}",
            "surrogate.source_datasets=[mini_addnist,mini_multnist]", "logger=none", f"paths.output_dir={out}"], "alone"))
    lines = err.getvalue().strip().splitlines()
    assert code == 1 and len(lines) == 1, err.getvalue()[-3000:]
    assert lines[0].startswith("search.py: error: surrogate=tr_rf: tr_rf for target 'mini_addnist' is missing the "
                               "feature files of source dataset(s) mini_multnist: no ")
    assert "mini_multnist_seed=<seed>.csv" in lines[0] and "python evaluate.py task=features" in lines[0]
    assert not list(out.rglob("archive.jsonl"))


def test_the_pipeline_runs_every_phase_and_a_rerun_has_nothing_to_do(flow):
    out = flow["out"]
    sweep = out / "multirun" / "t"
    assert flow["full"] == 0 and flow["rerun"][0] == 0
    # The rerun starts no command: every piece is found finished on disk.
    assert "+ python" not in flow["rerun"][1] and "2 of 2 runs finished" in flow["rerun"][1], flow["rerun"][1]
    for dataset in DATASETS:
        other = next(d for d in DATASETS if d != dataset)
        assert (sweep / "transfer" / f"{dataset}_seed=0.csv").is_file()
        assert (sweep / "transfer" / f"{dataset}_seed=0.strings.csv").is_file()
        info = json.loads((sweep / "finetuned" / "lm" / dataset / "info.json").read_text())
        assert info["target"] == dataset and {s["dataset"] for s in info["sources"] if s["role"] == "train"} == {other}
        for arm in ARMS:
            run = _run(dataset, arm, out)
            assert json.loads((run / "result.json").read_text())["iterations"] == 4
            final = json.loads((run / "final" / "result.json").read_text())
            assert final["mode"] == "final" and final["status"] == "ok" and 0 <= final["test_acc"] <= 1
        experiment = json.loads((_run(dataset, "lm", out) / "experiment.json").read_text())
        assert experiment["surrogate"]["checkpoint"] == str(sweep / "finetuned" / "lm" / dataset)
        tr_rf = json.loads((_run(dataset, "tr_rf", out) / "experiment.json").read_text())["surrogate"]
        assert tr_rf["transfer_dir"] == str(sweep / "transfer") and tr_rf["source_datasets"] == DATASETS
    aside = list(_run(DATASETS[0], "random", out).glob("final.incomplete-*"))
    assert len(aside) == 1 and (aside[0] / "train.log").read_text() == "killed\n"
    reports = sorted((sweep / "report").glob("*/report.md"))
    assert len(reports) == 1
    text = reports[-1].read_text()
    assert all(arm in text for arm in ARMS.values()) and "test" in text.lower()


def test_overrides_reach_their_scope_and_jobs_group_into_products():
    common, scoped = split_overrides(["logger=csv", "search:search.budget=4", "finetune,lm:surrogate.device=cpu",
                                      "hydra/launcher=joblib", "x=${oc.env:HOME}"], ["rf", "lm"])
    assert common == ["logger=csv", "hydra/launcher=joblib", "x=${oc.env:HOME}"]
    assert scoped == {"search": ["search.budget=4"], "finetune": ["surrogate.device=cpu"], "lm": ["surrogate.device=cpu"]}
    with pytest.raises(PipelineError, match="unknown scope 'serch'"):
        split_overrides(["serch:search.budget=4"], ["rf"])
    pairs = [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("c", 1)]
    assert product_groups(pairs) == [(["a", "b"], [0, 1]), (["c"], [1])]


def _script_args(name: str) -> list[str]:
    """The runner's arguments in multirun_sweeps/<name> (its one `exec python -m nas.pipeline ...` line)."""
    text = (REPO / "multirun_sweeps" / name).read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("exec python -m nas.pipeline "))
    args = shlex.split(line)[4:]
    assert args[-1] == "$@"
    return args[:-1]


def test_the_sweep_scripts_are_one_pipeline_command_each(tmp_path, capsys):
    """mini.sh and paper.sh compose (every override valid where it goes): their dry runs."""
    for name in ("mini.sh", "paper.sh"):
        assert subprocess.run(["bash", "-n", f"multirun_sweeps/{name}"], cwd=REPO).returncode == 0

    def dry(name, *extra):
        capsys.readouterr()
        assert pipeline_main([*_script_args(name), "--dry-run", *extra, f"paths.output_dir={tmp_path}"]) == 0
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith("+ python")]

    mini = dry("mini.sh")
    assert mini[0].startswith("+ python search.py -m sweep_name=mini dataset=mini_addnist,mini_multnist seed=0,1 "
                              "strategy=surrogate_evolution surrogate=random") and "search.budget=12" in mini[0]
    assert any(" trainer=final " in line and "trainer.max_epochs=4" in line for line in mini)
    paper = dry("paper.sh", "--datasets", "addnist,multnist", "--if-lm-missing", "skip")
    searches = [line for line in paper if line.startswith("+ python search.py")]
    assert len(searches) >= 3 and all("experiment=paper" in line for line in searches)
    assert not any("experiment=paper" in line for line in paper if not line.startswith("+ python search.py"))
    assert any("surrogate=tr_rf" in line and "surrogate.source_datasets=[addnist,multnist]" in line for line in searches)


def test_the_readme_quotes_mini_sh_settings():
    script = (REPO / "multirun_sweeps" / "mini.sh").read_text()
    settings = [t for t in script.split() if t.split(":")[0] in ("search", "final", "finetune") and "=" in t]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert settings and all(f"{t}" in readme for t in settings), settings


def test_a_fixed_checkpoint_dir_is_kept_when_finished_and_never_overwritten(tmp_path):
    from omegaconf import OmegaConf

    from surrogates.fine_tuning import fine_tune_task

    done = tmp_path / "lm" / "mini_addnist"
    done.mkdir(parents=True)
    (done / "info.json").write_text(json.dumps({"mode": "leave_one_out", "metrics": {}}))
    cfg = OmegaConf.create({"checkpoint_dir": str(done), "data": None})
    info = fine_tune_task(cfg, tmp_path / "run")  # nothing read, trained or written
    assert info["kept"] and info["checkpoint"] == str(done) and sorted(p.name for p in done.iterdir()) == ["info.json"]
    foreign = tmp_path / "lm" / "other"
    foreign.mkdir()
    with pytest.raises(ValueError, match="exists but holds no finished checkpoint"):
        fine_tune_task(OmegaConf.create({"checkpoint_dir": str(foreign), "data": None}), tmp_path / "run")


def test_a_language_model_that_cannot_load_stops_the_pipeline_before_phase_1(tmp_path, monkeypatch):
    """bert's hub model offline (or a missing directory) is found in seconds, not at phase 2."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    why = language_model_missing("bert", "nobody/no-such-model-anywhere")
    assert why.startswith("the bert arm cannot load its model: ") and "HF_HUB_OFFLINE" in why
    assert "no such directory" in language_model_missing("lm", str(tmp_path / "missing"))
    assert language_model_missing("lm", str(tmp_path)) is None  # a local directory is taken as it is
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = pipeline_main(["--sweep", "x", "--datasets", "mini_addnist,mini_multnist", "--seeds", "0",
                              "--arms", "bert", "--dry-run", f"paths.output_dir={tmp_path}",
                              "bert:surrogate.model_name_or_path=nobody/no-such-model-anywhere"])
    assert code != 0 and "the bert arm cannot load its model" in err.getvalue()
