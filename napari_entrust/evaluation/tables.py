"""Metrics as tables: one header and number format per metric, for ``entrust evaluate`` and the benchmark."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

#: (metric key, header, format) of the metrics every table shows, in this order: overlap, boundary,
#: calibration, uncertainty quality, hypotheses against raters, conflict
# fmt: off
METRIC_COLUMNS = (
    ("dice_WT", "Dice WT", ".3f"), ("dice_TC", "Dice TC", ".3f"), ("dice_ET", "Dice ET", ".3f"),
    ("hd95_WT", "HD95 WT mm", ".1f"),
    ("ece", "ECE all", ".4f"), ("ece_roi", "ECE ROI", ".3f"), ("brier_roi", "Brier ROI", ".3f"),
    ("nll_roi", "NLL ROI", ".3f"),
    ("error_auroc", "error AUROC", ".3f"), ("ueo", "UEO", ".3f"), ("qu_brats", "QU-BraTS", ".3f"),
    ("ged", "GED ↓", ".3f"), ("hm_iou", "HM-IoU", ".3f"),
    ("conflict_auroc", "conflict AUROC", ".3f"),
)
# fmt: on


def format_value(value, fmt: str) -> str:
    """A metric as text: ``format(value, fmt)``, or "–" where it is undefined (NaN, missing)."""
    return format(value, fmt) if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def markdown_table(first: str, columns: Sequence[tuple[str, str, str]], rows: Iterable[tuple[str, dict]]) -> list[str]:
    """The lines of a markdown table: one row per ``(name, values)``, one column per ``(key, header, format)``.

    Text values are shown as they are; numbers in the column's format.
    """
    lines = [f"| {first} | " + " | ".join(h for _, h, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows:
        cells = (v if isinstance(v, str) else format_value(v, f) for v, f in ((row.get(k), f) for k, _, f in columns))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
