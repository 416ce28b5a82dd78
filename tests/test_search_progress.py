"""The search progress line fits the terminal; without a bar, one plain line per update."""
from __future__ import annotations

import io
import logging
import re

import pytest
from rich.console import Console

from nas.search.progress import SearchProgress, format_seconds, layout, shorten

LABEL = "cifar10/regularized_evolution-tr_rf-zcp_graf/seed=1234567890"  # 60 characters
BAR = "━"


def _progress(width: int) -> tuple[SearchProgress, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    progress = SearchProgress(40, 10, True, LABEL, console=console)
    progress.update(11, 0.18304, 2)
    progress.update(12, 0.18304, 3)
    return progress, out


def test_at_80_columns_the_bar_count_and_eta_are_shown():
    assert len(LABEL) == 60
    progress, out = _progress(80)
    assert not progress.plain
    line = progress.render(80)
    progress.close()
    assert len(line) <= 80 and "\n" not in line
    assert BAR in line and "12/40" in line and re.search(r"ETA \d+:\d\d:\d\d", line)
    assert "best 0.1830" in line  # still room for the best accuracy
    assert "…" in line and line.startswith("cifar10/") and "seed=1234567890"[-5:] in line  # head…tail
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    final = [x for x in re.split(r"[\r\n]", screen) if x.strip()][-1]  # what the live display left
    assert len(final) <= 80
    assert "12/40" in final and "ETA" in final and BAR in final


def test_at_40_columns_the_bar_and_count_still_fit():
    progress, _ = _progress(40)
    line = progress.render(40)
    progress.close()
    assert len(line) <= 40 and BAR in line and "12/40" in line and "ETA" in line
    assert "best" not in line and "failed" not in line


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
def test_layout_drops_parts_in_order_and_always_fits(width):
    parts, bar = layout(width, LABEL, "123/1000", "best 0.9123", "failed 12", "0:12:34", "ETA 1:02:03")
    kinds = [kind for kind, _ in parts]
    assert {"bar", "count", "eta"} <= set(kinds) and bar >= 5
    assert sum(len(t) for _, t in parts) + bar + len(parts) - 1 <= width
    order = ["elapsed", "failed", "best"]  # dropped in this order: whatever is shown is a suffix
    shown = [k for k in order if k in kinds]
    assert shown == order[len(order) - len(shown):]


def test_shorten_and_format():
    assert shorten("abcdefghij", 5) == "ab…ij" and shorten("abc", 5) == "abc"
    assert format_seconds(3723) == "1:02:03" and format_seconds(None) == "-:--:--"


def test_disabled_writes_one_plain_line_per_update(caplog):
    caplog.set_level(logging.INFO, logger="nas.search.progress")
    progress = SearchProgress(40, 10, enabled=False, label=LABEL)
    assert progress.plain
    progress.update(10, None, 1)  # a failed candidate: no iteration done yet, so no ETA
    progress.update(11, 0.18304, 1)
    progress.update(12, 0.2, 3)
    progress.close()
    progress.update(13, 0.2, 3)  # after close: nothing
    lines = [r.getMessage() for r in caplog.records if r.name == "nas.search.progress"]
    assert len(lines) == 3
    pattern = r"iteration (\d+)/40 best (\S+) failed (\d+) elapsed \d+:\d\d:\d\d eta (\S+) \[" + re.escape(LABEL) + r"\]"
    parsed = [re.fullmatch(pattern, line).groups() for line in lines]
    assert parsed[0] == ("10", "-", "1", "-:--:--")
    assert parsed[1][:3] == ("11", "0.1830", "1") and re.fullmatch(r"\d+:\d\d:\d\d", parsed[1][3])
    assert parsed[2][:3] == ("12", "0.2000", "3")


def test_no_terminal_means_plain_lines_on_stderr_without_logging(capsys, monkeypatch):
    monkeypatch.setattr(logging.getLogger("nas.search.progress"), "propagate", False)  # no handlers anywhere
    progress = SearchProgress(5, 0, True, "run", console=Console(file=io.StringIO(), width=80))
    assert progress.plain  # a batch job's log file gets lines, not a bar drawn once at the end
    progress.update(1, 0.5, 0)
    progress.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("iteration 1/5 best 0.5000 failed 0 elapsed ")
