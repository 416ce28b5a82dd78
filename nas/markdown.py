"""The one markdown-table writer: the sweep summary (``nas.search.aggregate``) and the surrogate
report tables (``surrogates.report``) both print through it."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def to_markdown(table: pd.DataFrame, digits: int = 3, missing: str = "-") -> str:
    """A GitHub-flavoured markdown table of ``table``, its index as the first column.

    Floats get ``digits`` decimals (``missing`` when not finite) and numeric columns are
    right-aligned; anything else is written as ``str`` and left-aligned, so a caller that wants its
    own cell format passes a frame of strings. No trailing newline.
    """

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return missing if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v)

    header = [str(table.index.name or "")] + [str(c) for c in table.columns]
    align = ["---"] + ["---:" if pd.api.types.is_numeric_dtype(dtype) else "---" for dtype in table.dtypes]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for label, values in table.iterrows():
        lines.append("| " + " | ".join([str(label)] + [cell(v) for v in values]) + " |")
    return "\n".join(lines)
