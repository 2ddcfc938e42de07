"""Tiny pure helpers for NIfTI geometry: orientation, voxel sizes, grids, napari transforms.

Arrays inside napari-entrust are held in RAS+ canonical voxel order (nibabel's "closest canonical":
axes permuted and flipped, never interpolated). These helpers go there and back exactly.
"""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt_mod

_RAS = ornt_mod.axcodes2ornt(("R", "A", "S"))


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel edge lengths in mm along the three array axes."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def orientation_codes(affine: np.ndarray) -> str:
    """Axis codes such as ``"RAS"`` or ``"LPS"`` of the array axes (closest axes for oblique affines)."""
    return "".join(nib.aff2axcodes(affine))


def is_oblique(affine: np.ndarray, tol: float = 1e-4) -> bool:
    """True when the voxel axes are rotated or sheared away from the scanner axes."""
    direction = np.asarray(affine)[:3, :3] / voxel_sizes(affine)
    return bool(np.any(np.abs(np.abs(direction) - np.round(np.abs(direction))) > tol))


def to_canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder the first three axes of ``data`` to RAS+; return the data and its new affine."""
    ornt = ornt_mod.io_orientation(affine)
    out = ornt_mod.apply_orientation(data, ornt)
    return out, np.asarray(affine) @ ornt_mod.inv_ornt_aff(ornt, data.shape[:3])


def canonical_grid(shape, affine: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine the grid has after :func:`to_canonical`, without touching any data."""
    ornt = ornt_mod.io_orientation(affine)
    new_shape = [0, 0, 0]
    for axis, (target, _flip) in enumerate(ornt):
        new_shape[int(target)] = int(shape[axis])
    return tuple(new_shape), np.asarray(affine) @ ornt_mod.inv_ornt_aff(ornt, shape[:3])


def from_canonical(data: np.ndarray, original_affine: np.ndarray) -> np.ndarray:
    """Undo :func:`to_canonical`: put RAS+ data back into the voxel order of ``original_affine``.

    Extra trailing axes (channels, samples) are carried along unchanged.
    """
    back = ornt_mod.ornt_transform(_RAS, ornt_mod.io_orientation(original_affine))
    return np.ascontiguousarray(ornt_mod.apply_orientation(data, back))


def same_grid(shape_a, affine_a, shape_b, affine_b, atol: float = 1e-3) -> bool:
    """Same voxel grid: equal shapes and affines equal to ``atol`` mm."""
    return tuple(shape_a[:3]) == tuple(shape_b[:3]) and np.allclose(affine_a, affine_b, atol=atol)


def world_bounds(shape, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned world bounding box (mm) of the grid's voxel extents (voxel centres ± 0.5)."""
    corners = np.array(list(itertools.product(*[(-0.5, s - 0.5) for s in shape[:3]])))
    world = nib.affines.apply_affine(affine, corners)
    return world.min(axis=0), world.max(axis=0)


def overlap_fraction(shape_a, affine_a, shape_b, affine_b) -> float:
    """Share of grid A's world bounding box that grid B's bounding box covers (0 = disjoint)."""
    lo_a, hi_a = world_bounds(shape_a, affine_a)
    lo_b, hi_b = world_bounds(shape_b, affine_b)
    inter = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0, None)
    return float(np.prod(inter) / np.prod(hi_a - lo_a))


def block_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    """Affine of the grid made by averaging ``factor``³ blocks of voxels of ``affine``'s grid."""
    out = np.asarray(affine, dtype=float).copy()
    out[:3, 3] = nib.affines.apply_affine(affine, [(factor - 1) / 2.0] * 3)
    out[:3, :3] = out[:3, :3] * factor
    return out


def napari_transform(affine: np.ndarray) -> dict:
    """Layer keyword arguments that place an array with this affine in napari's world (mm).

    Axis-aligned grids get ``scale``/``translate`` (exact, fast slicing). Oblique grids get the full
    ``affine``: napari renders it correctly in 3-D and in 2-D shows it axis-aligned with a warning.
    """
    affine = np.asarray(affine, dtype=float)
    direction = affine[:3, :3]
    if np.allclose(direction, np.diag(np.diag(direction)), atol=1e-6):
        return {"scale": tuple(np.diag(direction)), "translate": tuple(affine[:3, 3])}
    return {"affine": affine}
