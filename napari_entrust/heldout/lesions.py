"""Tumours built from unions of ellipsoids, in four families: not the phantom's star-shaped blobs.

- ``ring``: a necrotic core inside an enhancing rim of uneven thickness, sometimes open on one side;
- ``cystic``: a thin rim around a fluid-filled cavity (fluid contrast, labelled necrosis);
- ``solid``: patchy enhancement in a non-enhancing core, no cavity;
- ``multifocal``: two ring lesions 15–30 mm apart.

Oedema reaches a distance from the core that varies smoothly around it, mostly through white matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import random_rotation

FAMILIES = ("ring", "cystic", "solid", "multifocal")
BOX_MM = 90  #: half-width of the box around the lesion centre in which tumour and events are built


@dataclass
class Tumour:
    """A lesion on the case grid: tissue masks, its family and the box it was built in."""

    necrosis: np.ndarray  #: bool (labelled NCR; fluid for a cystic lesion)
    enhancing: np.ndarray  #: bool (ET)
    oedema: np.ndarray  #: bool (ED)
    family: str
    box: tuple[slice, slice, slice]

    @property
    def core(self) -> np.ndarray:
        return self.necrosis | self.enhancing

    @property
    def any(self) -> np.ndarray:
        return self.core | self.oedema


def _smooth_field(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Smooth noise with unit standard deviation."""
    field = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-6)


def _lobes(rng: np.random.Generator, centre: np.ndarray, rel_grid: np.ndarray, size_mm: float) -> np.ndarray:
    """A union of 1–3 rotated ellipsoids near ``centre`` (box voxel coordinates, 1 mm)."""
    mask = np.zeros(rel_grid.shape[1:], bool)
    for i in range(int(rng.integers(1, 4))):
        offset = rng.normal(0, size_mm * 0.25, 3) if i else np.zeros(3)
        radii = size_mm * rng.uniform(0.45, 1.0, 3)
        rel = np.tensordot(random_rotation(rng, 90).T, rel_grid - (centre + offset)[:, None, None, None], axes=1)
        mask |= ((rel / radii[:, None, None, None]) ** 2).sum(0) <= 1.0
    return mask


def _ring(
    rng: np.random.Generator,
    core: np.ndarray,
    rim_mm: tuple[float, float],
    open_side: bool,
    rel_grid: np.ndarray,
    centre: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Necrosis deeper than an uneven rim inside ``core``; the rest enhances (one side open if asked)."""
    depth = ndimage.distance_transform_edt(core)
    rim = rng.uniform(*rim_mm) * (1 + 0.3 * _smooth_field(rng, core.shape, 4.0))
    necrosis = core & (depth > rim)
    enhancing = core & ~necrosis
    if open_side:
        direction = rng.normal(size=3)
        side = np.tensordot(direction / np.linalg.norm(direction), rel_grid - centre[:, None, None, None], axes=1)
        gap = side > np.percentile(side[core], 70)
        necrosis |= enhancing & gap
        enhancing &= ~gap
    return necrosis, enhancing


def make_tumour(rng: np.random.Generator, wm: np.ndarray, brain: np.ndarray) -> Tumour:
    """A tumour of a random family centred in deep white matter (fractions and mask on a 1 mm grid)."""
    depth = ndimage.distance_transform_edt(ndimage.binary_erosion(brain, iterations=2)[::3, ::3, ::3]) * 3
    candidates = np.argwhere((wm[::3, ::3, ::3] > 0.8) & (depth >= 22)) * 3
    if len(candidates) == 0:  # a small or strongly warped brain: the deepest white matter there is
        candidates = np.argwhere((wm[::3, ::3, ::3] > 0.5) & (depth >= 0.8 * depth.max())) * 3
    centre_full = candidates[int(rng.integers(len(candidates)))] + rng.integers(0, 3, 3)
    box = tuple(slice(max(int(c) - BOX_MM, 0), min(int(c) + BOX_MM, n)) for c, n in zip(centre_full, wm.shape))
    rel_grid = np.indices(tuple(b.stop - b.start for b in box), dtype=np.float32)
    centre = (centre_full - np.array([b.start for b in box])).astype(np.float32)
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    inside = brain[box]
    if family == "solid":
        core = _lobes(rng, centre, rel_grid, rng.uniform(8, 20)) & inside
        enhancing = core & (_smooth_field(rng, core.shape, 2.5) > rng.uniform(0.3, 1.0))
        necrosis = core & ~enhancing
    else:
        centres = [centre]
        if family == "multifocal":
            step = rng.normal(size=3)
            centres.append(centre + step / np.linalg.norm(step) * rng.uniform(15, 30))
        necrosis = np.zeros(inside.shape, bool)
        enhancing = np.zeros(inside.shape, bool)
        for c in centres:
            core = _lobes(rng, c, rel_grid, rng.uniform(7, 18) if family != "multifocal" else rng.uniform(5, 11))
            rim = (1.2, 2.2) if family == "cystic" else (2.0, 5.0)
            n, e = _ring(rng, core & inside, rim, family == "ring" and rng.random() < 0.4, rel_grid, c)
            necrosis, enhancing = necrosis | n, enhancing | e
    core = necrosis | enhancing
    reach = rng.uniform(4, 22) * (1 + 0.45 * _smooth_field(rng, core.shape, 8.0))
    distance = ndimage.distance_transform_edt(~core)
    oedema = (distance <= np.maximum(reach, 1.5)) & ~core & inside & ((wm[box] > 0.3) | (distance <= 3))
    full = [np.zeros(wm.shape, bool) for _ in range(3)]
    for target, part in zip(full, (necrosis, enhancing, oedema)):
        target[box] = part
    return Tumour(*full, family, box)
