"""Ground truth for evaluation: a label file, a labelled case folder, or a phantom folder with raters.

A phantom's ``truth/`` adds the four raters and the conflict mask; everything is read in RAS+ and
checked to lie on the label map's grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inference.normalize import head_mask
from ..io import geometry
from ..io.loader import load_case
from ..io.nifti import read_nifti
from ..outputs.prediction_folder import read_labels_ras


@dataclass
class Truth:
    """Ground truth of one case in RAS+: labels, and raters, conflict mask and brain when known."""

    name: str
    source: Path
    labels: np.ndarray  #: internal labels, RAS+
    affine: np.ndarray  #: RAS+ affine
    raters: np.ndarray | None = None  #: (R, ...) internal labels
    conflict: np.ndarray | None = None  #: bool
    brain: np.ndarray | None = None  #: bool; None: unknown (the whole volume is used)

    @property
    def spacing(self) -> np.ndarray:
        return geometry.voxel_sizes(self.affine)


def load_truth(path: str | Path) -> Truth:
    """Ground truth from a label file, a labelled case folder, or a phantom folder (with raters)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_file():
        labels, affine = read_labels_ras(path)
        return Truth(path.name.split(".")[0], path, labels, affine)
    meta_path = path / "truth" / "phantom.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    source = path / meta["files"]["image"] if meta and meta.get("format") == "msd" else path
    case = load_case(source)
    if case.labels is None:
        raise InputError(path, "has no label map (*_seg file or labelsTr/); evaluation needs the ground truth")
    truth = Truth(
        meta["name"] if meta else case.name, path, case.labels, case.grid.canonical_affine, brain=head_mask(case.images)
    )
    if meta:
        files = meta["files"]
        convention = meta.get("label_convention", "auto")

        def on_grid(name: str, data: np.ndarray, affine: np.ndarray) -> np.ndarray:
            if not geometry.same_grid(data.shape, affine, truth.labels.shape, truth.affine):
                raise InputError(path / files[name], f"is not on the grid of the case's label map {case.label_source}")
            return data

        raters = [
            on_grid(f"rater{r + 1}", *read_labels_ras(path / files[f"rater{r + 1}"], convention))
            for r in range(meta["n_raters"])
        ]
        truth.raters = np.stack(raters) if raters else None
        conflict = read_nifti(path / files["conflict"])
        truth.conflict = on_grid("conflict", *geometry.to_canonical(conflict.data, conflict.affine)) > 0
    return truth
