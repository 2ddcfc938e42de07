"""A brain from FreeSurfer's fsaverage5 surfaces (shipped in nilearn's wheel), not the phantom's MNI maps.

The pial and white surfaces of both hemispheres are warped (smooth random displacement, scaling,
rotation, a left-right flip) and voxelised onto the case grid: white matter inside the white
surface, cortex between white and pial, CSF in the sulci and around the brain. The surfaces
have no ventricles, deep grey matter or cerebellum, so those are added as deformed ellipsoids.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..errors import EntrustError

SURFACES = ("pial_left", "pial_right", "white_left", "white_right")
SUBDIVISION = 18  #: points per triangle edge when voxelising (edges up to 8.3 mm: under 0.5 mm apart)


@lru_cache(maxsize=1)
def fsaverage_surfaces() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Vertices (mm) and triangles of the four fsaverage5 surfaces."""
    import nilearn.datasets

    folder = Path(nilearn.datasets.__file__).parent / "data" / "fsaverage5"
    out = {}
    for name in SURFACES:
        path = folder / f"{name}.gii.gz"
        if not path.exists():
            raise EntrustError(
                f"{path}: fsaverage5 surface missing from the nilearn package (nilearn >= 0.11 ships it)"
            )
        surface = nib.load(str(path))
        out[name] = (surface.darrays[0].data.astype(np.float64), surface.darrays[1].data.astype(np.int64))
    return out


def _barycentric(level: int) -> np.ndarray:
    """(P, 3) weights of a regular grid of points on a triangle."""
    i, j = np.meshgrid(np.arange(level + 1), np.arange(level + 1), indexing="ij")
    keep = i + j <= level
    a, b = i[keep] / level, j[keep] / level
    return np.stack([a, b, 1 - a - b], 1)


def voxelise(vertices: np.ndarray, faces: np.ndarray, to_voxel: np.ndarray, shape) -> np.ndarray:
    """The voxels inside a closed surface (world mm vertices; ``to_voxel`` maps world to voxel indices)."""
    weights = _barycentric(SUBDIVISION)
    shell = np.zeros(shape, bool)
    for start in range(0, len(faces), 4096):  # chunks keep the sampled points to ~50 MB
        tri = vertices[faces[start : start + 4096]]  # (F, 3 corners, 3)
        points = np.einsum("pc,fcx->fpx", weights, tri).reshape(-1, 3)
        idx = np.rint(points @ to_voxel[:3, :3].T + to_voxel[:3, 3]).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
        shell[tuple(idx[inside].T)] = True
    return ndimage.binary_fill_holes(shell)


def _warp(rng: np.random.Generator, amplitude_mm: float, spacing_mm: float = 12.0):
    """A smooth random displacement field, as a function of world positions (N, 3) -> displaced (N, 3)."""
    size = int(np.ceil(280 / spacing_mm)) + 1
    field = ndimage.gaussian_filter(rng.normal(size=(3, size, size, size)), sigma=(0, 1.2, 1.2, 1.2))
    field *= amplitude_mm / (np.abs(field).max() + 1e-9)

    def apply(points: np.ndarray) -> np.ndarray:
        coords = ((points + 140.0) / spacing_mm).T
        return points + np.stack([ndimage.map_coordinates(f, coords, order=1, mode="nearest") for f in field], 1)

    return apply


def _ellipsoid(centre, radii, rotation: np.ndarray, world: np.ndarray) -> np.ndarray:
    """Inside an ellipsoid, for the world coordinates (3, X, Y, Z) of a grid."""
    rel = np.tensordot(rotation.T, world - np.asarray(centre, np.float32)[:, None, None, None], axes=1)
    return ((rel / np.asarray(radii, np.float32)[:, None, None, None]) ** 2).sum(0) <= 1.0


def random_rotation(rng: np.random.Generator, degrees: float) -> np.ndarray:
    """A rotation by up to ``degrees`` about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(-degrees, degrees))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def world_grid(affine: np.ndarray, shape) -> np.ndarray:
    """World coordinates (3, X, Y, Z) of every voxel of a grid."""
    idx = np.indices(shape, dtype=np.float32)
    return (
        np.tensordot(affine[:3, :3].astype(np.float32), idx, axes=1)
        + affine[:3, 3].astype(np.float32)[:, None, None, None]
    )


def make_brain(rng: np.random.Generator, affine: np.ndarray, shape) -> dict[str, np.ndarray]:
    """Tissue fractions (float32 in [0, 1]: wm, gm, deep_gm, csf) and the brain mask, on the RAS+ grid."""
    warp = _warp(rng, rng.uniform(2.0, 6.0))
    scale = rng.uniform(0.88, 1.08, 3)
    rotation = random_rotation(rng, 6.0)
    shift = rng.uniform(-5, 5, 3)
    flip = np.diag([-1.0 if rng.random() < 0.5 else 1.0, 1.0, 1.0])
    to_voxel = np.linalg.inv(affine)

    def placed(points: np.ndarray) -> np.ndarray:
        return warp(points) @ (rotation @ flip @ np.diag(scale)).T + shift

    surfaces = {name: voxelise(placed(v), f, to_voxel, shape) for name, (v, f) in fsaverage_surfaces().items()}
    white = surfaces["white_left"] | surfaces["white_right"]
    pial = surfaces["pial_left"] | surfaces["pial_right"] | white
    world = world_grid(affine, shape)
    extras = _deep_structures(rng, world, rotation @ flip @ np.diag(scale), shift)
    cerebellum = extras.pop("cerebellum")
    folia = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 1.5) > 0.0
    tissue = {
        "wm": (white | (cerebellum & ~folia)) & ~extras["ventricles"] & ~extras["deep_gm"],
        "gm": (pial & ~white) | (cerebellum & folia),
        "deep_gm": extras["deep_gm"] & ~extras["ventricles"],
    }
    inner = pial | cerebellum
    hull = ndimage.binary_closing(inner, iterations=4) | ndimage.binary_dilation(inner, iterations=2)
    tissue["csf"] = (hull & ~inner) | extras["ventricles"]
    fractions = {k: ndimage.gaussian_filter(v.astype(np.float32), 0.5) for k, v in tissue.items()}
    total = np.maximum(sum(fractions.values()), 1.0)
    fractions = {k: (v / total).astype(np.float32) for k, v in fractions.items()}
    fractions["brain"] = hull | inner
    return fractions


def _deep_structures(
    rng: np.random.Generator, world: np.ndarray, linear: np.ndarray, shift: np.ndarray
) -> dict[str, np.ndarray]:
    """Lateral ventricles, thalami and cerebellum as ellipsoids, placed like the surfaces."""

    def at(centre, radii, tilt=8.0):
        return _ellipsoid(
            linear @ np.asarray(centre, float) + shift,
            np.abs(np.diag(linear)) * radii,
            random_rotation(rng, tilt),
            world,
        )

    size = rng.uniform(0.7, 1.5)  # ventricles vary most between people
    ventricles = np.zeros(world.shape[1:], bool)
    thalami = np.zeros(world.shape[1:], bool)
    for side in (-1, 1):
        ventricles |= at(
            (side * rng.uniform(9, 14), rng.uniform(-12, -2), rng.uniform(12, 20)),
            (4 * size, rng.uniform(18, 26), 6 * size),
        )
        thalami |= at((side * 10, -16, 4), (7, 12, 7))
    cerebellum = at((0, rng.uniform(-62, -55), rng.uniform(-38, -30)), (48, 26, 17), tilt=5.0)
    return {"ventricles": ventricles, "deep_gm": thalami, "cerebellum": cerebellum}
