"""nas.search.figures: synthetic archives in, valid PNGs out, never an exception."""
import math
import os

import numpy as np
import pytest

from nas.search.figures import (
    assign_phases,
    best_so_far,
    write_search_figures,
    write_sweep_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CORE = {"best_so_far.png", "accuracy_per_iteration.png", "params_vs_accuracy.png"}
FAILURES = ["nan", "oom", "too_slow", "too_large", "shape_error", "error", "zero_acc"]


def _record(index, iteration, origin, val_acc=None, status="ok", prediction=None, params=10_000):
    return {
        "index": index,
        "iteration": iteration,
        "arch": f"sequential(conv3x3, linear) #{index}",
        "val_acc": val_acc,
        "status": status,
        "origin": origin,
        "prediction": prediction,
        "num_params": params,
        "seconds": {"train": 1.0, "total": 1.2},
    }


def synthetic_archive(n=60, seed=0, failure_every=7, n_initial=10, surrogate_from=40):
    """Initial population, then evolution, then surrogate-chosen candidates, with failures
    (iteration None) sprinkled in and predictions on the later candidates."""
    rng = np.random.default_rng(seed)
    records, iteration = [], 0
    while iteration < n:
        index = len(records)
        if index and index % failure_every == 0:
            status = FAILURES[(index // failure_every) % len(FAILURES)]
            origin = "random" if iteration < n_initial else "mutation"
            records.append(_record(index, None, origin, status=status, params=0))
            continue
        if iteration < n_initial:
            origin = ["random", "seed", "seed_copy"][iteration % 3]
        elif iteration < surrogate_from:
            origin = "fallback" if iteration % 9 == 0 else "mutation"
        else:
            origin = "surrogate"
        acc = float(np.clip(0.5 + 0.004 * iteration + rng.normal(scale=0.05), 0.05, 0.99))
        prediction = acc + float(rng.normal(scale=0.03)) if iteration >= 20 else None
        params = int(10 ** rng.uniform(3, 7))
        records.append(_record(index, iteration, origin, acc, prediction=prediction, params=params))
        iteration += 1
    return records


def _assert_png(path):
    assert path.exists(), path
    assert path.stat().st_size > 1000, path
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_SIGNATURE, path


def test_full_archive_writes_all_figures(tmp_path):
    records = synthetic_archive()
    written = write_search_figures(records, tmp_path / "figures", title="unit test")
    assert {p.name for p in written} == CORE | {"predicted_vs_true.png"}
    for path in written:
        _assert_png(path)
    # no temporary files left behind
    assert sorted(os.listdir(tmp_path / "figures")) == sorted(p.name for p in written)


def test_refresh_overwrites_in_place(tmp_path):
    records = synthetic_archive()
    first = write_search_figures(records[:20], tmp_path)
    second = write_search_figures(records, tmp_path)
    assert {p.name for p in first} <= {p.name for p in second}
    for path in second:
        _assert_png(path)


def test_without_predictions_skips_predicted_vs_true(tmp_path):
    records = [dict(r, prediction=None) for r in synthetic_archive(n=15)]
    written = write_search_figures(records, tmp_path)
    assert {p.name for p in written} == CORE
    assert not (tmp_path / "predicted_vs_true.png").exists()


def test_empty_archive_writes_nothing(tmp_path):
    assert write_search_figures([], tmp_path) == []
    assert os.listdir(tmp_path) == []


def test_single_record(tmp_path):
    written = write_search_figures([_record(0, 0, "random", 0.42, prediction=0.4)], tmp_path)
    assert {p.name for p in written} == CORE | {"predicted_vs_true.png"}
    for path in written:
        _assert_png(path)


@pytest.mark.parametrize("n", [1, 5])
def test_all_failed_archive(tmp_path, n):
    records = [_record(i, None, "random", status=FAILURES[i % 7], params=0) for i in range(n)]
    written = write_search_figures(records, tmp_path)
    assert {p.name for p in written} == CORE
    for path in written:
        _assert_png(path)


def test_malformed_records_do_not_raise(tmp_path):
    records = [
        {},
        {"index": 1, "iteration": 0, "status": "ok", "val_acc": "n/a"},
        {"index": 2, "iteration": 1, "status": "ok", "val_acc": 0.5, "num_params": None},
        {"index": 3, "iteration": 2, "status": "ok", "val_acc": float("nan"), "prediction": 0.3},
        "not a record",
    ]
    written = write_search_figures(records, tmp_path)
    assert CORE <= {p.name for p in written}


def test_phases():
    records = [
        _record(0, 0, "seed", 0.5),
        _record(1, 1, "random", 0.5),
        _record(2, None, "random", status="oom"),
        _record(3, 2, "seed_copy", 0.5),
        _record(4, 3, "mutation", 0.5),
        _record(5, 4, "random", 0.5),  # a random candidate after evolution began
        _record(6, 5, "fallback", 0.5),
        _record(7, 6, "surrogate", 0.5),
        _record(8, 7, "posthoc", 0.5),
    ]
    assert assign_phases(records) == [
        "initial", "initial", "initial", "initial", "evolved", "other", "evolved", "surrogate",
        "other",
    ]


def test_best_so_far_curve():
    records = [
        _record(0, 0, "random", status="nan"),
        _record(1, None, "random", status="oom"),
        _record(2, 1, "random", 0.3),
        _record(3, 2, "mutation", 0.2),
        _record(4, 3, "mutation", 0.6),
        _record(5, 4, "mutation", 0.9, status="zero_acc"),  # failed: ignored
        _record(6, 5, "mutation", 0.5),
    ]
    iterations, best = best_so_far(records)
    assert iterations.tolist() == [0, 1, 2, 3, 4, 5]
    assert math.isnan(best[0])
    assert best[1:].tolist() == [0.3, 0.3, 0.6, 0.6, 0.6]
    assert best_so_far([])[0].size == 0


def test_sweep_figure_unequal_lengths(tmp_path):
    rng = np.random.default_rng(0)
    runs = {
        "evolution": [np.maximum.accumulate(rng.uniform(size=n)) for n in (50, 40, 45)],
        "surrogate": [np.maximum.accumulate(rng.uniform(size=n)).tolist() for n in (30, 60)],
        "one seed": [[np.nan, 0.2, 0.4]],
        "empty arm": [],
    }
    path = write_sweep_figure(runs, tmp_path / "sweep" / "best_so_far_sweep.png", title="t")
    _assert_png(path)


def test_sweep_figure_without_runs(tmp_path):
    _assert_png(write_sweep_figure({}, tmp_path / "sweep.png"))


def test_figures_are_fast(tmp_path):
    import time

    records = synthetic_archive(n=300, seed=1)
    write_search_figures(records[:5], tmp_path / "warmup")  # first-use font cache, imports
    start = time.perf_counter()
    written = write_search_figures(records, tmp_path)
    elapsed = time.perf_counter() - start
    assert len(written) == 4
    assert elapsed < 3.0, f"writing the figures for 300 records took {elapsed:.2f}s"
