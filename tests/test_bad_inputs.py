"""Bad input through the real command lines: one line ``<prog>: error: ...`` on stderr, exit 1, no
traceback, nothing trained or written; Ctrl-C: one line with the resume command, exit 130.

Each input has one subprocess test (the CLI path); the pure checks are also tested in-process.
Seed, budget and ``arch=@file`` are refused before torch is imported (about a second each);
the dataset, tr_rf and architecture-string checks come before anything trains.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from search_helpers import FAST

from nas.validation import SEED_MAX, InputError, check_budget, check_seed, read_architecture_file

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "HYDRA_FULL_ERROR": "0"}
TINY_TRAIN = ["dataset.n_train=256", "dataset.n_valid=256", "dataset.n_test=256", "logger=none"]


def _default_sigint() -> None:
    """The child gets Python's Ctrl-C handler even when this test runs with SIGINT ignored (a
    background job): Python installs it only over SIG_DFL."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(script: str, *args: str, out: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args, f"paths.output_dir={out}"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess, script: str, *words: str) -> str:
    """The error line, after checking: exit 1, no traceback, short stderr, the words in it."""
    err = proc.stderr
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{script}: error: ")]
    assert len(errors) == 1 and len(lines) <= 3, err[-3000:]
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert len(errors[0]) < 2000, len(errors[0])
    return errors[0]


def _written(out: Path, *names: str) -> list[Path]:
    return [p for name in names for p in out.rglob(name)]


# --------------------------------------------------------------- seed and budget (in-process)
def test_seed_and_budget_checks():
    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX and check_seed("7") == 7
    for bad, words in [("abc", "not a whole number"), (1.5, "not a whole number"), (2.0, "not a whole number"),
                       (True, "not a whole number"), (None, "not a whole number"), (-1, "out of range"),
                       (SEED_MAX + 1, "out of range")]:
        with pytest.raises(InputError, match=words) as info:
            check_seed(bad)
        assert "0 to 4294967295" in str(info.value)
    assert check_budget(1) == 1 and check_budget(300) == 300
    for bad, words in [(1.5, "search.budget=1.5 is not a whole number"), ("ten", "'ten' is not a whole number"),
                       (0, "search.budget=0 must be at least 1"), (-3, "must be at least 1")]:
        with pytest.raises(InputError, match=words):
            check_budget(bad)
    with pytest.raises(InputError, match=r"seed='x{36}\.\.\. is not"):  # a long value is not echoed in full
        check_seed("x" * 1000)


@pytest.mark.parametrize(("script", "override", "words"), [
    ("search.py", "seed=abc", ["seed='abc' is not a whole number", "0 to 4294967295"]),
    ("search.py", "seed=-1", ["seed=-1 is out of range", "0 to 4294967295"]),
    ("search.py", "search.budget=1.5", ["search.budget=1.5 is not a whole number"]),
    ("search.py", "search.budget=ten", ["search.budget='ten' is not a whole number"]),
    ("search.py", "search.budget=0", ["search.budget=0 must be at least 1"]),
    ("train.py", "seed=-1", ["seed=-1 is out of range", "0 to 4294967295"]),
    ("train.py", "seed=abc", ["seed='abc' is not a whole number"]),
])
def test_bad_seed_or_budget_on_the_command_line(tmp_path, script, override, words):
    args = [*FAST, override] if script == "search.py" else [*TINY_TRAIN, override]
    _one_line_error(_cli(script, *args, out=tmp_path), script, *words)
    assert not _written(tmp_path, "archive.jsonl", "checkpoint.json", "result.json", "experiment.json")


# --------------------------------------------------------------------------- arch=@file
def test_arch_file_must_be_utf8_text(tmp_path):
    binary, latin = tmp_path / "arch.bin", tmp_path / "arch.txt"
    binary.write_bytes(bytes(range(256)))
    latin.write_bytes("sequential[computation[relu], computation[relu]] # caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xe9 at offset 54\)"):
        read_architecture_file(latin)
    with pytest.raises(InputError, match="is a binary file"):
        read_architecture_file(binary)
    with pytest.raises(InputError, match="Is a directory"):
        read_architecture_file(tmp_path)
    out = tmp_path / "out"
    for path, words in [(binary, ["is a binary file", "one architecture string"]),
                        (latin, ["is not UTF-8 text", "one architecture string"])]:
        _one_line_error(_cli("train.py", *TINY_TRAIN, f"arch=@{path}", out=out), "train.py", str(path), *words)
    assert not _written(out, "result.json")


# ------------------------------------------------------------------ a long bad architecture
def test_long_bad_architecture_string_is_cut(tmp_path):
    from nas.space import EinSpace, ParseError

    good = EinSpace(input_shape=(3, 16, 16)).seed("resnet18").long_string
    cut = good.index(", sequential[", 3000) + 2  # a module starts here: put a 100 kB name there
    bad = good[:cut] + "Q" * 100_000 + " " + good[cut:]
    with pytest.raises(ParseError) as info:
        EinSpace(input_shape=(3, 16, 16)).parse(bad)
    text = str(info.value)
    assert "\n" not in text and len(text) < 400, text
    assert f"at position {info.value.position} of {len(bad)} characters" in text and ">>>HERE>>>" in text
    path = tmp_path / "long.txt"
    path.write_text(bad)
    line = _one_line_error(_cli("train.py", *TINY_TRAIN, f"arch=@{path}", out=tmp_path / "out"), "train.py",
                           "cannot parse arch", f"of {len(bad)} characters", ">>>HERE>>>", "found 'QQQ", "(100000 characters)")
    assert len(line) < 600, line
    assert not _written(tmp_path / "out", "result.json")


# ------------------------------------------------------------------------------ datasets
def _small_addnist(root: Path) -> Path:
    folder = root / "addnist"
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        np.save(folder / f"{split}_x.npy", np.zeros((4, 3, 28, 28), np.float32))
        np.save(folder / f"{split}_y.npy", np.arange(4, dtype=np.int64))
    return folder


def test_text_file_named_npy_is_not_a_numpy_file(tmp_path):
    from nas.data import DatasetError, UnseenNASDataModule

    folder = _small_addnist(tmp_path / "data")
    (folder / "train_x.npy").write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    with pytest.raises(DatasetError, match=r"train_x\.npy is not a NumPy \.npy file: it starts with b'0\.1 0\.'"):
        UnseenNASDataModule("addnist", data_dir=tmp_path / "data").setup()
    (folder / "train_x.npy").write_bytes(b"")
    with pytest.raises(DatasetError, match="is not a NumPy .npy file: it is empty"):
        UnseenNASDataModule("addnist", data_dir=tmp_path / "data").setup()
    (folder / "train_x.npy").write_text("0.1 0.2 0.3\n")
    out = tmp_path / "out"
    line = _one_line_error(_cli("train.py", "dataset=addnist", f"paths.data_dir={tmp_path / 'data'}",
                                "logger=none", out=out), "train.py",
                           f"{folder / 'train_x.npy'} is not a NumPy .npy file", "\\x93NUMPY", "numpy.save",
                           "float32 (N, 3, 28, 28)")
    assert "pickled" not in line
    assert not _written(out, "result.json")


def test_missing_dataset_folder_names_the_files(tmp_path):
    out, missing = tmp_path / "out", tmp_path / "nonexistent"
    proc = _cli("train.py", "dataset=addnist", f"paths.data_dir={missing}", "logger=none", out=out)
    _one_line_error(proc, "train.py", f"folder {missing / 'addnist'} does not exist",
                    "train_x.npy", "valid_y.npy", "test_y.npy", "float32 (N, 3, 28, 28)",
                    "labels in [0, 19]", "NAS_DATA_DIR", "https://github.com/Towers-D/NAS-Unseen-Datasets")
    assert not _written(out, "result.json")  # a dataset error is not a candidate status


# ------------------------------------------------------------------------------- tr_rf
def test_tr_rf_without_transfer_files_fails_before_training(tmp_path):
    out = tmp_path / "out"
    start = time.perf_counter()
    _one_line_error(_cli("search.py", *FAST, "surrogate=tr_rf", out=out), "search.py",
                    f"{out / 'transfer'}/<dataset>_seed=<seed>.csv", "other than 'mini_addnist'",
                    "python evaluate.py task=features", f"export_dir={out / 'transfer'}")
    assert not _written(out, "archive.jsonl", "checkpoint.json", "first_generation")
    assert time.perf_counter() - start < 120


# -------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_handler_one_line_and_exit_130(capsys, monkeypatch):
    from nas.hydra_utils import CtrlC

    monkeypatch.setattr(sys, "argv", ["search.py", "seed=1", "run='a b'"])
    with pytest.raises(SystemExit) as info, CtrlC("search.py", lambda: "at iteration 3/8 in /x; resume with: ..."):
        raise KeyboardInterrupt
    assert info.value.code == 130
    assert capsys.readouterr().err == "search.py: interrupted at iteration 3/8 in /x; resume with: ...\n"
    # Lightning turns Ctrl-C during fit into sys.exit(1): after our handler saw SIGINT, that is 130 too
    with pytest.raises(SystemExit) as info, CtrlC("train.py", lambda: "while training") as ctrl_c:
        ctrl_c.signalled = True
        sys.exit(1)
    assert info.value.code == 130 and capsys.readouterr().err == "train.py: interrupted while training\n"
    with pytest.raises(SystemExit) as info, CtrlC("train.py", lambda: "-"):
        sys.exit(1)  # any other exit passes through
    assert info.value.code == 1 and capsys.readouterr().err == ""
    with pytest.raises(SystemExit), CtrlC("search.py", lambda: 1 / 0):  # a broken description still exits 130
        raise KeyboardInterrupt
    assert "rerun the same command: python search.py seed=1 'run='\"'\"'a b'\"'\"''" in capsys.readouterr().err


def _interrupt_search(out: Path, *extra: str) -> subprocess.CompletedProcess:
    """Start a search, send SIGINT once it has saved a checkpoint, return the finished process."""
    args = [sys.executable, "search.py", *extra, *FAST, "search.budget=12", f"paths.output_dir={out}"]
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while not list(out.rglob("checkpoint.json")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the search did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, "", err)


def _check_interrupted(proc: subprocess.CompletedProcess) -> list[str]:
    err = proc.stderr
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) < 5, err
    line = next(line for line in lines if line.startswith("search.py: interrupted "))
    assert "resume with: python search.py " in line, line
    return shlex.split(line.split("resume with: ", 1)[1])


@pytest.mark.slow
def test_ctrl_c_stops_the_search_in_one_line_and_the_command_resumes_it(tmp_path):
    out = tmp_path / "out"
    command = _check_interrupted(proc := _interrupt_search(out))
    assert "at iteration " in proc.stderr and "/12 in " in proc.stderr
    assert not _written(out, "result.json")
    again = subprocess.run([sys.executable, *command[1:]], cwd=REPO, env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    (result,) = _written(out, "result.json")
    assert json.loads(result.read_text())["iterations"] == 12
    assert "resuming" in again.stdout + again.stderr  # from the checkpoint, not started over


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep(tmp_path):
    out = tmp_path / "out"
    command = _check_interrupted(_interrupt_search(out, "-m", "seed=0,1", "sweep_name=ctrl_c"))
    assert command[1:3] == ["search.py", "-m"] and "seed=0,1" in command
    assert not list(out.rglob("seed=1"))  # the sweep stopped: the second job never started


@pytest.mark.slow
def test_ctrl_c_in_train_writes_no_result(tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, "train.py", *TINY_TRAIN[:-1], "logger=csv", "trainer.max_epochs=50", f"paths.output_dir={out}"]
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while not any(p.stat().st_size for p in out.rglob("metrics.jsonl")):  # an epoch's row: training runs
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and len([x for x in err.splitlines() if x.strip()]) < 5, err
    assert "train.py: interrupted" in err and "no result.json written" in err and "python train.py" in err
    assert not _written(out, "result.json")


def test_the_resume_command_after_ctrl_c_does_not_restart_again(monkeypatch):
    from nas.search.cli import resume_command

    monkeypatch.setattr(sys, "argv", ["search.py", "seed=1", "search.restart=true", "arch='a b'"])
    assert resume_command() == "python search.py seed=1 'arch='\"'\"'a b'\"'\"''"
    monkeypatch.setattr(sys, "argv", ["search.py", "+search.restart=True"])
    assert resume_command() == "python search.py"


@pytest.mark.parametrize("override, words", [
    ("strategy.population_size=abc", ("strategy: TypeError", "check the strategy.* settings")),
    ("trainer.max_epochs=abc", ("trainer: ValueError", "invalid literal", "check the trainer.* settings")),
])
def test_a_config_value_of_the_wrong_type_is_one_line(tmp_path, override, words):
    _one_line_error(_cli("search.py", *FAST, override, out=tmp_path), "search.py", *words)
    assert not _written(tmp_path, "archive.jsonl", "checkpoint.json", "result.json")
