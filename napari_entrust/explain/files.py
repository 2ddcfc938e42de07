"""What ``entrust explain`` writes: the attribution maps (one volume per modality), the target and the numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.case import Case
from ..io.files import check_writable, write_json
from .explanation import Explanation


def explanation_files(out_dir: str | Path) -> dict[str, Path]:
    """The files :func:`write_explanation` writes (checked before any work is done)."""
    out_dir = Path(out_dir)
    files = {f"attribution_{m}": out_dir / f"attribution_{m}.nii.gz" for m in ("gradient", "intervention", "fused")}
    files["target"] = out_dir / "target.nii.gz"
    files["explanation"] = out_dir / "explanation.json"
    return files


def write_explanation(
    case: Case, explanation: Explanation, out_dir: str | Path, *, overwrite: bool = False
) -> dict[str, Path]:
    """The three attribution maps (4-D, one volume per modality), the target mask and explanation.json."""
    files = explanation_files(out_dir)
    check_writable(list(files.values()), overwrite)
    order = ", ".join(explanation.modalities)
    for method, data in explanation.maps.items():
        case.write(
            np.moveaxis(data, 0, -1),
            files[f"attribution_{method}"],
            overwrite=overwrite,
            dtype=np.float32,
            description=f"{method} attribution: {order}",
        )
    case.write(
        explanation.target.astype(np.uint8),
        files["target"],
        overwrite=overwrite,
        dtype=np.uint8,
        description="explained region",
    )
    summary = {**explanation.summary, "files": {k: p.name for k, p in files.items()}}
    write_json(files["explanation"], summary, overwrite=overwrite)  # NaN (a region no input moves) becomes null
    return files
