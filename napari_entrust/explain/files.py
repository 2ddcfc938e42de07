"""What ``entrust explain`` writes: the attribution maps (one volume per modality), the target and the numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.case import Case
from ..io.files import write_json
from ..io.output_folder import output_folder, staged, top_names
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
    out_dir = Path(out_dir)
    files = explanation_files(out_dir)
    with output_folder(out_dir, overwrite=overwrite, ours=top_names(out_dir, files.values())) as staging:
        written = staged(files, out_dir, staging)
        order = ", ".join(explanation.modalities)
        for method, data in explanation.maps.items():
            case.write(
                np.moveaxis(data, 0, -1),
                written[f"attribution_{method}"],
                dtype=np.float32,
                description=f"{method} attribution: {order}",
            )
        case.write(
            explanation.target.astype(np.uint8), written["target"], dtype=np.uint8, description="explained region"
        )
        summary = {**explanation.summary, "files": {k: p.name for k, p in files.items()}}
        write_json(written["explanation"], summary)  # NaN (a region no input moves) becomes null
    return files
