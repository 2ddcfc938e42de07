"""napari reader: a BraTS/MSD case folder, an MSD 4-D NIfTI, or single NIfTI volumes -> layers.

A whole case becomes one Image layer per modality (+ Labels); a single 3-D file becomes one layer,
named by its modality when the file name says it, and a Labels layer when it is a segmentation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import labels as label_conv
from .errors import InputError
from .geometry import to_canonical
from .io import find_case_files, is_msd_image, load_case
from .layers import LayerTuple, case_layers, contrast_limits, geometry_kwargs
from .modalities import ALIASES, DISPLAY_NAMES
from .nifti import ReferenceGrid, nifti_suffix, read_nifti, strip_nifti_suffix

_LABEL_WORDS = ("seg", "label", "labels", "mask")


def get_reader(path: str | list[str]):
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
    path = path[0] if isinstance(path, list) else path
    return case_layers(load_case(Path(path)))


def _modality_in_name(path: Path) -> str | None:
    """``BraTS2021_00000_flair.nii.gz`` -> ``flair``; ``seg`` for label files; None if the name does not say."""
    stem = strip_nifti_suffix(path).lower()
    for token in reversed(stem.replace("-", "_").split("_")):
        if token in ALIASES:
            return ALIASES[token]
    return "seg" if any(word in stem for word in _LABEL_WORDS) else None


def _looks_like_labels(data: np.ndarray) -> bool:
    """Integer voxels with a handful of values: a segmentation, whatever the file is called."""
    return np.issubdtype(data.dtype, np.integer) and np.unique(data).size <= 16


def read_volume(path: Path) -> LayerTuple:
    """One 3-D NIfTI file as one layer, in RAS+ order at its world position."""
    mod = _modality_in_name(path)
    vol = read_nifti(path, dtype=None)
    if mod is None and _looks_like_labels(vol.data):
        mod = "seg"
    grid = ReferenceGrid.from_volume(vol)
    data, affine = to_canonical(vol.data if mod == "seg" else vol.data.astype(np.float32), vol.affine)
    meta = {"source": str(path), "entrust_grid": grid.to_dict(), "entrust_affine": affine.tolist()}
    place = geometry_kwargs(affine)
    if mod == "seg":
        values = {int(v) for v in np.unique(data)}
        if not np.allclose(data, np.round(data)):
            raise InputError(path, "looks like a segmentation by its name but holds fractional values")
        convention = label_conv.guess_convention(values, "")
        if not label_conv.unexpected_values(values, convention):
            data = label_conv.to_internal(data, convention)
        meta["entrust_label_convention"] = convention
        return data.astype(np.int32 if data.max() > 255 else np.uint8), \
            {"name": strip_nifti_suffix(path), "opacity": 0.5, "metadata": meta, **place}, "labels"
    if not np.isfinite(data).all():
        raise InputError(path, f"holds {int((~np.isfinite(data)).sum())} NaN/Inf voxels")
    name = DISPLAY_NAMES.get(mod, strip_nifti_suffix(path))
    if mod:
        meta["entrust_modality"] = mod
    return data, {"name": name, "colormap": "gray", "blending": "additive", "contrast_limits": contrast_limits(data),
                  "metadata": meta, **place}, "image"


def read_volumes(path: str | list[str]) -> list[LayerTuple]:
    paths = [Path(p) for p in (path if isinstance(path, list) else [path])]
    return [read_volume(p) for p in paths]
