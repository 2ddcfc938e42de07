"""Cases and phantoms as napari layer data tuples — plain data, no napari or Qt import.

Every layer gets the case's RAS+ geometry (mm) and its source in ``metadata``, so images, labels
and every later output overlay exactly, in napari and once written back to NIfTI.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import geometry
from .case import Case
from .modalities import DISPLAY_NAMES, MODALITIES

LayerTuple = tuple[np.ndarray, dict, str]


class ObliqueDisplayWarning(UserWarning):
    """An oblique affine is shown with napari's full affine; 2-D slices are then not axis-aligned."""


def geometry_kwargs(affine: np.ndarray) -> dict:
    """napari placement of an array with this RAS+ affine (warns for oblique grids)."""
    kwargs = geometry.napari_transform(affine)
    if "affine" in kwargs:
        warnings.warn("the image grid is oblique: napari shows it with its full affine; 2-D slicing of rotated "
                      "layers is approximate in napari, 3-D view and saved files are exact",
                      ObliqueDisplayWarning, stacklevel=3)
    return kwargs


def contrast_limits(data: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> tuple[float, float]:
    """Robust display range: percentiles of the non-zero voxels."""
    values = data[data != 0]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [lower, upper]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def case_layers(case: Case, *, extra_metadata: dict | None = None) -> list[LayerTuple]:
    """One Image layer per modality, plus a Labels layer when the case has labels."""
    place = geometry_kwargs(case.affine)
    meta = {"entrust_case": case.name, "entrust_affine": case.affine.tolist(),
            "entrust_reference": str(case.grid.path), **(extra_metadata or {})}
    layers: list[LayerTuple] = []
    for mod in case.modalities:
        layers.append((case.images[mod], {
            "name": DISPLAY_NAMES.get(mod, mod), "colormap": "gray", "blending": "additive" if layers else "translucent",
            "contrast_limits": contrast_limits(case.images[mod]), "visible": mod == MODALITIES[1] or len(case.modalities) == 1,
            "metadata": {**meta, "entrust_modality": mod, "source": case.sources.get(mod, "")}, **place,
        }, "image"))
    if case.labels is not None:
        layers.append((case.labels, {
            "name": "labels", "opacity": 0.5,
            "metadata": {**meta, "entrust_role": "ground truth", "source": case.label_source or ""}, **place,
        }, "labels"))
    return layers
