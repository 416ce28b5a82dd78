"""Nothing a search wrote is lost or silently rewritten (issue 9, section 1).

* An archive without a checkpoint is rebuilt by replay (nothing retrained), partly replayed with
  the rest kept aside, or refused with a one-line message that touches no file.
* ``search.restart=true`` moves everything the run wrote into ``restarted-<time>/``.
* A refused resume leaves ``.hydra/`` describing the run in the directory (single and multirun).
* Rerunning a finished search rewrites nothing and returns the saved result.

The CLI cases run search.py through Hydra: one in a fresh interpreter, the others in a forked
child of this process (``fault_driver.run_forked`` with no fault), which is the same code path
without the seconds of importing torch again.
"""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fault_driver import preload, run_forked
from search_helpers import FAST, deterministic_view, run_dir_for, search_config

from nas.search.archive import read_archive
from nas.search.hydra_record import HydraRecord
from nas.search.runner import SearchError, SearchRunner

REPO = Path(__file__).resolve().parents[1]
RF = ["strategy=surrogate_evolution", "surrogate=rf", "encoding=graf", "strategy.n_sampled=4", "strategy.n_chosen=2",
      "strategy.refit_every=2"]
RE = ["strategy=regularised_evolution", "surrogate=none", "search.budget=5"]
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
RUN = Path("search/mini_addnist/regularised_evolution-none-none/seed=0")


def _files(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``run_dir`` with its bytes and modification time."""
    return {str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------- archive, no checkpoint
def test_an_archive_without_checkpoint_is_replayed_and_nothing_is_retrained(tmp_path, caplog):
    """A user deletes the checkpoint of a search with surrogate refits: the rerun replays the
    archive (refits included) and extends it exactly as an uninterrupted run; the archived
    candidates are not trained again (their lines, timings included, stay as they were)."""
    full = search_config(*RF, "search.budget=8")
    reference = run_dir_for(tmp_path / "reference", full)
    SearchRunner(full, reference).run()

    short = search_config(*RF, "search.budget=6")
    run_dir = run_dir_for(tmp_path / "deleted", short)
    SearchRunner(short, run_dir).run()
    before = (run_dir / "archive.jsonl").read_bytes()
    (run_dir / "checkpoint.json").unlink()
    with caplog.at_level(logging.WARNING, logger="nas.search.runner"):
        result = SearchRunner(search_config(*RF, "search.budget=8"), run_dir).run()
    assert any("rebuilt the search state by replaying its" in r.getMessage() for r in caplog.records)
    assert result["iterations"] == 8
    after = (run_dir / "archive.jsonl").read_bytes()
    assert after.startswith(before)  # never cut, never rewritten
    assert deterministic_view(read_archive(run_dir / "archive.jsonl")) == \
        deterministic_view(read_archive(reference / "archive.jsonl"))
    assert not (run_dir / "archive.redone.jsonl").exists()


@pytest.mark.parametrize("arm", [
    ["strategy=surrogate_objective", "surrogate=rf", "encoding=graf", "strategy.objective_steps=4",
     "strategy.min_improvement=-1", "strategy.refit_every=2"],  # -1: every predicted step is trained
    ["strategy=rejection_filter", "surrogate=rf", "encoding=graf", "strategy.n_sampled=4", "strategy.n_chosen=2",
     "strategy.refit_every=2"],
], ids=["surrogate_objective", "rejection_filter"])
def test_every_surrogate_strategy_replays(tmp_path, arm):
    full = search_config(*arm, "search.budget=8")
    reference = run_dir_for(tmp_path / "reference", full)
    SearchRunner(full, reference).run()
    assert {"posthoc", "surrogate"} & {r["origin"] for r in read_archive(reference / "archive.jsonl")}
    short = search_config(*arm, "search.budget=6")
    run_dir = run_dir_for(tmp_path / "deleted", short)
    SearchRunner(short, run_dir).run()
    (run_dir / "checkpoint.json").unlink()
    SearchRunner(full, run_dir).run()
    assert deterministic_view(read_archive(run_dir / "archive.jsonl")) == \
        deterministic_view(read_archive(reference / "archive.jsonl"))
    assert not (run_dir / "archive.redone.jsonl").exists()


def _tamper(path: Path, index: int) -> None:
    """Give record ``index`` the architecture of another record (a valid string the strategy does
    not propose there)."""
    records = read_archive(path)
    other = next(r["arch"] for r in records if r["arch"] != records[index]["arch"])
    records[index]["arch"] = other
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def test_a_kill_while_the_shared_first_generation_is_copied_loads_the_rest(tmp_path):
    """An arm killed while it appended the shared first generation (2 of its records written, no
    checkpoint yet): the rerun replays them and copies the rest, it trains none of them."""
    shared = tmp_path / "shared"
    baseline = search_config(*RE, output_dir=shared)
    SearchRunner(baseline, run_dir_for(tmp_path / "baseline", baseline)).run()
    arm = search_config("strategy=surrogate_evolution", "surrogate=random", "strategy.n_sampled=4",
                        "strategy.n_chosen=2", "search.budget=5", output_dir=shared)
    reference_dir = run_dir_for(tmp_path / "reference", arm)
    SearchRunner(arm, reference_dir).run()
    reference = read_archive(reference_dir / "archive.jsonl")
    n_initial = next(r["index"] for r in reference if r["iteration"] == 3) + 1

    run_dir = run_dir_for(tmp_path / "killed", arm)
    run_dir.mkdir(parents=True)
    lines = (reference_dir / "archive.jsonl").read_bytes().splitlines(keepends=True)
    (run_dir / "archive.jsonl").write_bytes(b"".join(lines[:2]))
    assert SearchRunner(arm, run_dir).run()["iterations"] == 5
    archive = read_archive(run_dir / "archive.jsonl")
    assert archive[:n_initial] == reference[:n_initial]  # copied, timings included: nothing retrained
    assert deterministic_view(archive) == deterministic_view(reference)


def test_an_archive_that_replays_in_part_keeps_the_rest_aside(tmp_path, caplog):
    cfg = search_config(*RE)
    reference = run_dir_for(tmp_path / "reference", cfg)
    SearchRunner(cfg, reference).run()
    run_dir = run_dir_for(tmp_path / "run", cfg)
    SearchRunner(cfg, run_dir).run()
    n = len(read_archive(run_dir / "archive.jsonl"))
    (run_dir / "checkpoint.json").unlink()
    (run_dir / "result.json").unlink()
    _tamper(run_dir / "archive.jsonl", 3)
    with caplog.at_level(logging.WARNING, logger="nas.search.runner"):
        assert SearchRunner(cfg, run_dir).run()["iterations"] == 5
    assert any(f"from the first 3 of its {n} candidates; the other {n - 3} do not replay" in r.getMessage()
               for r in caplog.records)
    assert len(read_archive(run_dir / "archive.redone.jsonl")) == n - 3  # kept, not deleted
    assert deterministic_view(read_archive(run_dir / "archive.jsonl")) == \
        deterministic_view(read_archive(reference / "archive.jsonl"))


def test_an_archive_that_does_not_replay_is_refused_and_left_as_it_is(tmp_path):
    cfg = search_config(*RE)
    run_dir = run_dir_for(tmp_path, cfg)
    SearchRunner(cfg, run_dir).run()
    (run_dir / "checkpoint.json").unlink()
    _tamper(run_dir / "archive.jsonl", 0)
    before = _files(run_dir)
    with pytest.raises(SearchError) as info:
        SearchRunner(cfg, run_dir).run()
    message = str(info.value)
    assert "\n" not in message
    assert "holds archive.jsonl" in message and "no checkpoint.json" in message
    assert "search.restart=true" in message and "Restore checkpoint.json" in message
    assert _files(run_dir) == before


def test_a_half_written_first_line_is_kept_aside_and_the_run_starts(tmp_path):
    cfg = search_config(*RE)
    run_dir = run_dir_for(tmp_path, cfg)
    run_dir.mkdir(parents=True)
    (run_dir / "archive.jsonl").write_bytes(b'{"index":0,"iteration":0,"arch":"seq')
    assert SearchRunner(cfg, run_dir).run()["iterations"] == 5
    assert (run_dir / "archive.redone.jsonl").read_bytes() == b'{"index":0,"iteration":0,"arch":"seq\n'


# -------------------------------------------------------------------------------- finished
def test_rerunning_a_finished_search_rewrites_nothing(tmp_path):
    cfg = search_config(*RF, "search.budget=5", "logger=csv")
    run_dir = run_dir_for(tmp_path, cfg)
    first = SearchRunner(cfg, run_dir).run()
    before = _files(run_dir)
    assert {"features.csv", "metrics.jsonl", "summary.json", "result.json"} <= set(before)
    saved = json.loads((run_dir / "result.json").read_text())
    assert SearchRunner(cfg, run_dir).run() == saved
    smaller = search_config(*RF, "search.budget=4", "logger=csv")  # a budget already reached
    assert SearchRunner(smaller, run_dir).run() == saved
    assert _files(run_dir) == before
    assert saved["strategy_seconds"] == json.loads(json.dumps(first["strategy_seconds"]))
    assert saved["strategy_seconds"]  # kept across a resume since the checkpoint carries them


# ------------------------------------------------------------------ restart, .hydra (CLI)
def _hydra_files(run_dir: Path) -> dict[str, str]:
    return {name: (run_dir / ".hydra" / name).read_text() for name in ("config.yaml", "hydra.yaml", "overrides.yaml")}


def test_refused_resume_keeps_hydra_and_restart_moves_everything_aside(tmp_path):
    preload()
    out = tmp_path / "out"
    base = [*FAST, *RE, "logger=csv", f"paths.output_dir={out}"]
    run_dir = out / RUN
    assert run_forked("none", 0, base, tmp_path / "run.log") == 0, (tmp_path / "run.log").read_text()[-3000:]
    accepted = _hydra_files(run_dir)
    assert {p.name: p.read_text() for p in (run_dir / ".hydra" / "accepted").iterdir()} == accepted
    written = _files(run_dir)

    # A refused resume (a fresh interpreter, as a user runs it): exit 1, .hydra/ as before.
    refused = subprocess.run([sys.executable, str(REPO / "search.py"), *base, "trainer.lr=0.1"], env=ENV,
                             cwd=REPO, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "different experiment config" in refused.stderr and "Traceback" not in refused.stderr
    assert _hydra_files(run_dir) == accepted
    assert yaml.safe_load(accepted["config.yaml"])["trainer"]["lr"] == 0.04
    kept = list((run_dir / ".hydra").glob("refused-*"))
    assert len(kept) == 1 and "trainer.lr=0.1" in (kept[0] / "overrides.yaml").read_text()
    now = _files(run_dir)
    changed = {name for name in set(now) | set(written) if now.get(name, (None,))[0] != written.get(name, (None,))[0]}
    assert changed <= {"search.log"} | {str(p.relative_to(run_dir)) for p in kept[0].iterdir()}
    assert all(now[name] == written[name] for name in written if not name.startswith((".hydra", "search.log")))

    # search.restart=true: every file the run wrote moves aside; only .hydra's three files stay.
    names_before = {p.name for p in run_dir.iterdir()} - {".hydra"}
    assert {"archive.jsonl", "checkpoint.json", "experiment.json", "result.json", "metrics.jsonl",
            "summary.json", "figures"} <= names_before
    log_before = (run_dir / "search.log").read_text()
    restart = [*base, "trainer.lr=0.1", "search.restart=true", "search.budget=4", "strategy.population_size=4"]
    assert run_forked("none", 0, restart, tmp_path / "restart.log") == 0, \
        (tmp_path / "restart.log").read_text()[-3000:]
    aside = list(run_dir.glob("restarted-*"))
    assert len(aside) == 1
    assert {p.name for p in aside[0].iterdir()} == names_before | {".hydra"}
    assert (aside[0] / ".hydra" / "accepted" / "config.yaml").read_text() == accepted["config.yaml"]
    assert list((aside[0] / ".hydra").glob("refused-*"))
    assert (aside[0] / "search.log").read_text() == log_before
    assert not (run_dir / "search.log").read_text().startswith(log_before[:200])
    assert read_archive(aside[0] / "archive.jsonl") == read_archive_bytes(written["archive.jsonl"][0])
    new = json.loads((run_dir / "result.json").read_text())
    assert new["iterations"] == 4 and new["config"]["trainer"]["lr"] == 0.1
    assert {p.name for p in (run_dir / ".hydra").iterdir()} == {"config.yaml", "hydra.yaml", "overrides.yaml",
                                                                "accepted"}
    assert "trainer.lr=0.1" in (run_dir / ".hydra" / "accepted" / "overrides.yaml").read_text()


def read_archive_bytes(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def test_a_refused_multirun_job_keeps_its_hydra(tmp_path):
    preload()
    out = tmp_path / "out"
    base = ["-m", *FAST, *RE, f"paths.output_dir={out}"]
    assert run_forked("none", 0, base, tmp_path / "m.log") == 0, (tmp_path / "m.log").read_text()[-3000:]
    job = out / "multirun" / "default" / "mini_addnist" / "regularised_evolution-none-none" / "seed=0"
    accepted = _hydra_files(job)
    run_forked("none", 0, [*base, "trainer.lr=0.1"], tmp_path / "m2.log")
    assert "different experiment config" in (tmp_path / "m2.log").read_text()
    assert _hydra_files(job) == accepted
    assert len(list((job / ".hydra").glob("refused-*"))) == 1


# ------------------------------------------------------------------------- HydraRecord unit
def test_hydra_record_accept_refuse_restore_and_a_legacy_run(tmp_path, caplog):
    hydra_dir = tmp_path / ".hydra"
    hydra_dir.mkdir()
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (hydra_dir / name).write_text(f"old {name}")
    record = HydraRecord(hydra_dir)
    with caplog.at_level(logging.WARNING, logger="nas.search.hydra_record"):
        assert record.refuse() is None  # a run recorded before snapshots: said, nothing moved
    assert "holds no copy of the config" in caplog.text
    record.accept()
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (hydra_dir / name).write_text(f"new {name}")
    refused = record.refuse()
    assert (refused / "config.yaml").read_text() == "new config.yaml"
    assert (hydra_dir / "config.yaml").read_text() == "old config.yaml"
    assert record.refuse() is None  # refused twice: nothing more to keep
    assert len(list(hydra_dir.glob("refused-*"))) == 1
    (hydra_dir / "overrides.yaml").write_text("rerun")
    record.restore()
    assert (hydra_dir / "overrides.yaml").read_text() == "old overrides.yaml"
    assert HydraRecord(None).refuse() is None and not HydraRecord.of_current_job(tmp_path).active
