"""Where a case's uncertainty score lies among reference cases, so that "0.18" means something.

The case score (:func:`napari_entrust.model.trustmap.case_score`) is the mean TrustMap over the
voxels that may be tumour: 0 when the model is sure everywhere, 1 when it is unsure everywhere.
``resources/case_scores.json`` holds the bundled model's scores on held-out phantoms (written by
``benchmarks/case_score_reference.py``); a score is placed among them only for that same model.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..model.checkpoint import resources_dir

REFERENCE_FILE = "case_scores.json"


def load_reference(path: Path | None = None) -> dict | None:
    """The reference scores (``model_sha256``, ``cases``, ``scores``), or None if there are none."""
    path = path or resources_dir() / REFERENCE_FILE
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def percentile(score: float, scores: list[float]) -> float:
    """Share of the reference scores below ``score`` (ties count half), in percent."""
    below = sum(s < score for s in scores) + 0.5 * sum(s == score for s in scores)
    return 100.0 * below / len(scores)


def describe_score(score: float, model_sha256: str, reference: dict | None) -> list[str]:
    """The score with its scale, and its place among the reference cases when they are this model's
    (short lines: the widget does not wrap them)."""
    lines = [f"case uncertainty score {score:.3f} (0 sure, 1 unsure: mean TrustMap where tumour is plausible)"]
    if reference and reference.get("model_sha256") == model_sha256 and reference.get("scores"):
        scores, what = reference["scores"], reference.get("description", "reference cases")
        lines.append(
            f"above {percentile(score, scores):.0f} % of {len(scores)} {what} ({min(scores):.2f}–{max(scores):.2f})"
        )
    return lines
