"""What a pipeline sweep is made of, where each piece lives on disk, and which pieces are done.

Read-only: nothing here writes. The runner (``nas.pipeline.runner``) asks, for every phase, which
pieces are missing and launches only those, so a rerun of the same command skips what is finished
and resumes the rest.

Where things are (``<sweep>`` = the search multirun dir, ``hydra.sweep.dir`` of ``search.py`` with
``sweep_name=<name>``, e.g. ``outputs/multirun/mini``):

- search runs: ``<sweep>/<dataset>/<strategy>-<surrogate>-<encoding>/seed=<s>/`` (``search.py``'s
  own layout, read from the composed config, so an arm's encoding is whatever its config selects);
  finished when ``result.json`` records a budget at least the one asked for;
- phase 2 exports: ``<sweep>/transfer/<dataset>_seed=<s>.csv`` and ``.strings.csv`` of every
  baseline run; done when the feature file comes from that run (its ``.json``) and holds every
  trained candidate of its archive (a grown run is exported again);
- phase 2 language models: ``<sweep>/finetuned/<arm>/<target>/`` (``arm`` = ``lm``), a checkpoint
  fine-tuned on every dataset but ``<target>``; done when its ``info.json`` exists (the folder
  appears whole: ``train.py checkpoint_dir=`` renames it into place when complete);
- phase 4: ``<run>/final/result.json`` (``train.py trainer=final`` of the run's best
  architecture); done when it holds the run's current best (a run extended since is retrained);
- Hydra records of the non-search steps: ``<sweep>/pipeline/<step>/<time>/``; reports:
  ``<sweep>/report/<time>/report.md``.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
BASELINE = "random"  # surrogate_evolution with random scores: the paper's RE baseline
STEPS = ("search", "features", "finetune", "final", "report")  # scopes besides the arm names
_SCOPED = re.compile(r"^([A-Za-z_][A-Za-z0-9_,]*):(.*)$")


class PipelineError(RuntimeError):
    """A one-line, user-facing reason why the pipeline cannot go on."""


def split_overrides(args: list[str], arms: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``key=value`` goes to every Hydra command; ``<scope>:key=value`` only to the commands of
    that scope: ``search`` (every search), an arm's name (``random`` is the baseline; ``rf``,
    ``tr_rf``, ``lm``, ...: that arm's searches), ``features``, ``finetune``, ``final``,
    ``report``; several scopes: ``finetune,lm:key=value``."""
    valid = {*STEPS, BASELINE, *arms}
    common: list[str] = []
    scoped: dict[str, list[str]] = {}
    for arg in args:
        match = _SCOPED.match(arg)
        if match is None:
            common.append(arg)
            continue
        for scope in match[1].split(","):
            if scope not in valid:
                raise PipelineError(f"unknown scope {scope!r} in {arg!r}; scopes: {', '.join(sorted(valid))} "
                                    "(scope:key=value reaches only those commands; key=value reaches all)")
            scoped.setdefault(scope, []).append(match[2])
    return common, scoped


@dataclass
class Sweep:
    """One pipeline sweep: the matrix (datasets x seeds x arms) and the overrides of each command."""

    name: str
    datasets: list[str]
    seeds: list[int]
    arms: list[str]  # phase 3's surrogate arms; the baseline (random) is phase 1
    common: list[str] = field(default_factory=list)
    scoped: dict[str, list[str]] = field(default_factory=dict)
    _composed: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _run_dirs: dict[tuple[str, str, int], Path] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ overrides per command
    def overrides(self, *scopes: str) -> list[str]:
        """The common overrides, then those of each scope in order (later ones win in Hydra)."""
        return [*self.common, *(o for s in scopes for o in self.scoped.get(s, []))]

    def search_overrides(self, arm: str) -> list[str]:
        return self.overrides("search", arm)

    # ------------------------------------------------------------------ composed search config
    def composed(self, arm: str, dataset: str):
        """``search.py``'s config for one arm and dataset, Hydra's node included (cached)."""
        key = (arm, dataset)
        if key not in self._composed:
            from hydra import compose, initialize_config_dir
            from hydra.errors import HydraException
            from omegaconf.errors import OmegaConfBaseException

            overrides = [f"sweep_name={self.name}", f"dataset={dataset}", f"seed={self.seeds[0]}",
                         "strategy=surrogate_evolution", f"surrogate={arm}", *self.search_overrides(arm)]
            try:
                with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
                    self._composed[key] = compose("search", overrides=overrides, return_hydra_config=True)
            except (HydraException, OmegaConfBaseException) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise PipelineError(f"search.py {' '.join(overrides)}: {first}") from None
        return self._composed[key]

    @property
    def sweep_dir(self) -> Path:
        return Path(str(self.composed(BASELINE, self.datasets[0]).hydra.sweep.dir))

    @property
    def transfer_dir(self) -> Path:
        return self.sweep_dir / "transfer"

    def checkpoint_dir(self, arm: str, target: str | None = None) -> Path:
        """Phase 2's language model for ``target`` (fine-tuned on the other datasets), for ``arm``;
        without a target, the folder of them."""
        folder = self.sweep_dir / "finetuned" / arm
        return folder if target is None else folder / target

    def run_dir(self, arm: str, dataset: str, seed: int) -> Path:
        """Where ``search.py`` puts this job: ``hydra.sweep.dir`` / ``hydra.sweep.subdir``."""
        key = (arm, dataset, seed)
        if key not in self._run_dirs:
            cfg = self.composed(arm, dataset)
            cfg.seed, composed_seed = seed, cfg.seed  # resolved with this seed (a copy is slow), then put back
            try:
                self._run_dirs[key] = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
            finally:
                cfg.seed = composed_seed
        return self._run_dirs[key]

    def budget(self, arm: str, dataset: str) -> int:
        return int(self.composed(arm, dataset).search.budget)

    def dataset_name(self, dataset: str) -> str:
        return str(self.composed(BASELINE, dataset).dataset.name)

    def model_name(self, arm: str) -> str | None:
        """A language-model arm's ``surrogate.model_name_or_path`` (None for other arms)."""
        node = self.composed(arm, self.datasets[0]).surrogate
        return None if node.get("model_name_or_path") is None else str(node.model_name_or_path)

    # ------------------------------------------------------------------ what is done
    def search_finished(self, arm: str, dataset: str, seed: int) -> bool:
        result = read_json(self.run_dir(arm, dataset, seed) / "result.json")
        try:
            return result is not None and int(result["budget"]) >= self.budget(arm, dataset)
        except (KeyError, TypeError, ValueError):
            return False

    def export_file(self, dataset: str, seed: int) -> Path:
        return self.transfer_dir / f"{self.dataset_name(dataset)}_seed={seed}.csv"

    def export_done(self, dataset: str, seed: int) -> bool:
        """The baseline run's feature and string tables are in the transfer dir, all rows included."""
        run = self.run_dir(BASELINE, dataset, seed)
        table = self.export_file(dataset, seed)
        strings = table.with_name(table.name[: -len(".csv")] + ".strings.csv")
        record = read_json(table.with_suffix(".json"))
        if not strings.is_file() or record is None or record.get("source") != str(run.resolve()):
            return False
        return table_ids(table) == trained_ids(run)

    def checkpoint_done(self, arm: str, dataset: str) -> bool:
        return (self.checkpoint_dir(arm, self.dataset_name(dataset)) / "info.json").is_file()

    def final_dir(self, run: Path) -> Path:
        return run / "final"

    def final_done(self, run: Path) -> bool:
        """``<run>/final/result.json`` holds the final test of the run's current best architecture."""
        result = read_json(self.final_dir(run) / "result.json")
        if result is None:
            return False
        return (result.get("arch") or {}).get("long") == best_architecture(run)

    def runs(self, arms: list[str]) -> list[tuple[str, str, int, Path]]:
        """``(arm, dataset, seed, run dir)`` for the matrix of ``arms``."""
        return [(arm, d, s, self.run_dir(arm, d, s)) for arm in arms for d in self.datasets for s in self.seeds]


# ---------------------------------------------------------------------------- small readers
def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def trained_ids(run: Path) -> list[int]:
    """The ids of the candidates a feature table of ``run`` holds (its trained ones)."""
    from nas.search.archive import read_archive
    from surrogates.string_tables import TRAINED_STATUSES

    path = run / "archive.jsonl"
    if not path.is_file():
        return []
    return [int(r["index"]) for r in read_archive(path) if r.get("status") in TRAINED_STATUSES]


def table_ids(path: Path) -> list[int] | None:
    """The ``id`` column of a feature table (the first column), or None if it cannot be read."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            header = next(rows)
            column = header.index("id")
            return [int(float(row[column])) for row in rows if row]
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def best_architecture(run: Path) -> str | None:
    """The long string ``train.py run=<run>`` trains: the best ``ok`` entry of the archive."""
    from nas.architecture_input import ArchitectureError, best_archive_entry

    try:
        return best_archive_entry(run)["arch"]
    except ArchitectureError:
        return None


def product_groups(pairs: list[tuple[Any, Any]]) -> list[tuple[list[Any], list[Any]]]:
    """Cover ``(a, b)`` pairs with few products ``A x B`` (one Hydra multirun each): the ``a`` that
    miss the same ``b`` share a group. Order is kept."""
    by_a: dict[Any, list[Any]] = {}
    for a, b in pairs:
        by_a.setdefault(a, []).append(b)
    groups: dict[tuple, list[Any]] = {}
    for a, bs in by_a.items():
        groups.setdefault(tuple(bs), []).append(a)
    return [(list(a_values), list(bs)) for bs, a_values in groups.items()]
