"""Cases and predictions as napari layer data tuples — plain data, no napari or Qt import.

Every layer gets the case's RAS+ geometry (mm) and its source in ``metadata``, so images, labels
and every later output overlay exactly, in napari and once written back to NIfTI.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..inference.prediction import Prediction
from ..io import geometry
from ..io.case import Case
from ..io.modalities import DISPLAY_NAMES, MODALITIES
from ..outputs.catalog import OUTPUTS, Output, value

LayerTuple = tuple[np.ndarray, dict, str]


class ObliqueDisplayWarning(UserWarning):
    """An oblique affine is shown with napari's full affine; 2-D slices are then not axis-aligned."""


def geometry_kwargs(affine: np.ndarray) -> dict:
    """napari placement of an array with this RAS+ affine (warns for oblique grids)."""
    kwargs = geometry.napari_transform(affine)
    if "affine" in kwargs:
        warnings.warn(
            "the image grid is oblique: napari shows it with its full affine; 2-D slicing of rotated "
            "layers is approximate in napari, 3-D view and saved files are exact",
            ObliqueDisplayWarning,
            stacklevel=3,
        )
    return kwargs


def contrast_limits(data: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> tuple[float, float]:
    """Robust display range: percentiles of the non-zero voxels."""
    values = data[data != 0]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [lower, upper]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def case_metadata(case: Case) -> dict:
    """What every layer of a case carries: its name, RAS+ affine, reference grid and input files."""
    return {
        "entrust_case": case.name,
        "entrust_affine": case.affine.tolist(),
        "entrust_reference": str(case.grid.path),
        "entrust_grid": case.grid.to_dict(),
        "entrust_sources": dict(case.sources),
        "entrust_label_convention": case.label_convention or "brats2021",
        **(
            {
                "entrust_dicom_series": dict(case.dicom_series),  # each modality's files, in slice order
                "entrust_dicom_reference": case.reference_modality,  # the series a DICOM-SEG references
                "entrust_dicom_study": case.dicom_study,
            }
            if case.dicom_reference
            else {}
        ),
    }


def with_leading_axis(place: dict) -> dict:
    """Placement of a stack with one extra leading axis (e.g. K hypotheses) over a 3-D grid."""
    if "affine" in place:
        affine = np.eye(5)
        affine[1:, 1:] = np.asarray(place["affine"])
        return {"affine": affine}
    return {"scale": (1.0, *place["scale"]), "translate": (0.0, *place["translate"])}


def _limits(data: np.ndarray) -> tuple[float, float]:
    hi = float(np.percentile(data, 99.9)) if data.size else 1.0
    return (0.0, hi if hi > 0 else 1.0)


def output_layer(output: Output, data: np.ndarray, modality: str | None, place: dict, meta: dict) -> LayerTuple:
    """One output as a layer: its name, style and role from :data:`~napari_entrust.outputs.catalog.OUTPUTS`."""
    metadata = {**meta, "entrust_role": output.role(modality), **({"entrust_modality": modality} if modality else {})}
    kwargs = {"name": output.layer_name(modality), "visible": output.visible, **output.style}
    if output.kind == "image" and "contrast_limits" not in kwargs:
        kwargs["contrast_limits"] = _limits(data)
    return data, {**kwargs, "metadata": metadata, **(with_leading_axis(place) if output.stack else place)}, output.kind


def prediction_layers(pred: Prediction, place: dict, metadata: dict, *, to_layer_order=None) -> list[LayerTuple]:
    """Every EnTrust output that is shown as a layer, as a layer tuple; only mask and TrustMap visible.

    ``pred`` is on the case grid (RAS+); ``to_layer_order`` maps such arrays back to the voxel order
    of the source layers (default: as is). The K-axis stack comes last: it makes the viewer 4-D,
    which makes every later insert slower.
    """
    order = to_layer_order or (lambda a: a)
    meta = {**metadata, "entrust_summary": pred.summary}
    shown = sorted((o for o in OUTPUTS if o.layer is not None), key=lambda o: o.stack)
    out = []
    for output in shown:
        for mod in pred.specific if output.per_modality else (None,):
            data = value(pred, output, mod)
            data = np.stack([order(s) for s in data]) if output.stack else order(data)
            out.append(output_layer(output, data, mod, place, meta))
    return out


def case_layers(case: Case, *, extra_metadata: dict | None = None) -> list[LayerTuple]:
    """One Image layer per modality, plus a Labels layer when the case has labels."""
    place = geometry_kwargs(case.affine)
    meta = {**case_metadata(case), **(extra_metadata or {})}
    layers: list[LayerTuple] = []
    for mod in case.modalities:
        layers.append(
            (
                case.images[mod],
                {
                    "name": DISPLAY_NAMES.get(mod, mod),
                    "colormap": "gray",
                    "blending": "additive" if layers else "translucent",
                    "contrast_limits": contrast_limits(case.images[mod]),
                    "visible": mod == MODALITIES[1] or len(case.modalities) == 1,
                    "metadata": {**meta, "entrust_modality": mod, "source": case.sources.get(mod, "")},
                    **place,
                },
                "image",
            )
        )
    if case.labels is not None:
        layers.append(
            (
                case.labels,
                {
                    "name": "labels",
                    "opacity": 0.5,
                    "metadata": {**meta, "entrust_role": "ground truth", "source": case.label_source or ""},
                    **place,
                },
                "labels",
            )
        )
    return layers
