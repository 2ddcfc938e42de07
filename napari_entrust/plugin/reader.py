"""napari reader: a BraTS/MSD case folder, an MSD 4-D NIfTI, or single NIfTI volumes -> layers.

A whole case becomes one Image layer per modality (+ Labels); a single 3-D file becomes one layer,
named by its modality when the file name says it, and a Labels layer when it is a segmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import labels as label_conv
from ..io.case_files import find_case_files, is_msd_image
from ..io.files import nifti_suffix, strip_nifti_suffix
from ..io.geometry import to_canonical
from ..io.loader import load_case, read_image_file, read_label_file
from ..io.modalities import ALIASES, DISPLAY_NAMES
from ..io.nifti import ReferenceGrid
from .anatomical_view import follow_current_viewer
from .layer_data import LayerTuple, case_layers, contrast_limits, geometry_kwargs

_LABEL_WORDS = ("seg", "label", "labels", "mask")


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerTuple]] | None:
    """Return a reader if ``path`` looks like something we can load, else None (napari tries others)."""
    paths = [Path(p) for p in (path if isinstance(path, list) else [path])]
    if len(paths) == 1 and paths[0].is_dir():
        try:
            find_case_files(paths[0])
        except InputError:
            return None
        return read_case
    if paths and all(p.is_file() and nifti_suffix(p) for p in paths):
        return read_case if len(paths) == 1 and is_msd_image(paths[0]) else read_volumes
    return None


def read_case(path: str | list[str]) -> list[LayerTuple]:
    """A whole case (BraTS or DICOM study folder, or MSD file) as one layer per modality, plus its labels."""
    path = path[0] if isinstance(path, list) else path
    layers = case_layers(load_case(Path(path)))
    follow_current_viewer()
    return layers


def _modality_in_name(path: Path) -> str | None:
    """``BraTS2021_00000_flair.nii.gz`` -> ``flair``; ``seg`` for label files; None if the name does not say."""
    stem = strip_nifti_suffix(path).lower()
    for token in reversed(stem.replace("-", "_").split("_")):
        if token in ALIASES:
            return ALIASES[token]
    return "seg" if any(word in stem for word in _LABEL_WORDS) else None


def _looks_like_labels(vol) -> bool:
    """Stored as integers with a handful of values: a segmentation, whatever the file is called."""
    return np.issubdtype(vol.header.get_data_dtype(), np.integer) and np.unique(vol.data).size <= 16


def read_volume(path: Path) -> LayerTuple:
    """One 3-D NIfTI file as one layer, in RAS+ order at its world position (checked as in a case)."""
    mod = _modality_in_name(path)
    if mod == "seg":
        vol, convention = read_label_file(path)
    else:
        vol = read_image_file(path)
        convention = None
        if mod is None and _looks_like_labels(vol):
            values = {int(v) for v in np.unique(vol.data)}
            convention = label_conv.guess_convention(values, "")
            if label_conv.unexpected_values(values, convention):
                convention = None  # not BraTS values: show them as they are
            vol.data = label_conv.to_internal(vol.data, convention) if convention else vol.data.astype(np.int32)
            mod = "seg"
    grid = ReferenceGrid.from_volume(vol)
    data, affine = to_canonical(vol.data, vol.affine)
    meta = {"source": str(path), "entrust_grid": grid.to_dict(), "entrust_affine": affine.tolist()}
    place = geometry_kwargs(affine)
    if mod == "seg":
        if convention:
            meta["entrust_label_convention"] = convention
        return data, {"name": strip_nifti_suffix(path), "opacity": 0.5, "metadata": meta, **place}, "labels"
    name = DISPLAY_NAMES.get(mod, strip_nifti_suffix(path))
    if mod:
        meta["entrust_modality"] = mod
    return (
        data,
        {
            "name": name,
            "colormap": "gray",
            "blending": "additive",
            "contrast_limits": contrast_limits(data),
            "metadata": meta,
            **place,
        },
        "image",
    )


def read_volumes(path: str | list[str]) -> list[LayerTuple]:
    """Single NIfTI files, one layer each."""
    paths = [Path(p) for p in (path if isinstance(path, list) else [path])]
    layers = [read_volume(p) for p in paths]
    follow_current_viewer()
    return layers
