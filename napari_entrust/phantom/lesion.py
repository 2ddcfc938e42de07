"""Anatomy and lesion geometry at 1 mm: a warped brain, a star-shaped tumour, conflict blobs beside it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .anatomy import load_mni_anatomy
from .domain import STANDARD, Shapes
from .render import block_mean


@dataclass
class Healthy:
    """Warped anatomy: fractions on the output grid, and the warp to get 1 mm detail where needed."""

    gm: np.ndarray  #: output grid
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    f: int  #: output spacing in mm (block size)
    shape: tuple[int, int, int]  #: the 1 mm grid covered by the output grid
    inverse: np.ndarray  #: output-1mm -> MNI-1mm voxel coordinates: inverse @ x + offset
    offset: np.ndarray

    def coarse_4mm(self) -> tuple[np.ndarray, np.ndarray]:
        """WM fraction and brain mask on a 4 mm grid under the same warp (for placing the lesion)."""
        c0 = np.full(3, 1.5)
        offset = (self.inverse @ c0 + self.offset - c0) / 4.0
        gm, wm, csf = (
            ndimage.affine_transform(
                m, self.inverse, offset, output_shape=tuple(n // 4 for n in self.shape), order=1, output=np.float32
            )
            for m in _pooled_anatomy(4)
        )
        return wm, (gm + wm + csf) > 0.5

    def box_1mm(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """GM, WM, CSF fractions and brain mask at 1 mm inside ``box`` (1 mm voxel slices)."""
        anat = load_mni_anatomy()
        lo = np.array([b.start for b in box], dtype=float)
        out_shape = tuple(b.stop - b.start for b in box)
        gm, wm, csf = (
            ndimage.affine_transform(
                m, self.inverse, self.inverse @ lo + self.offset, output_shape=out_shape, order=1, output=np.float32
            )
            for m in (anat.gm, anat.wm, anat.csf)
        )
        return gm, wm, csf, (gm + wm + csf) > 0.5


@lru_cache(maxsize=4)
def _pooled_anatomy(f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    anat = load_mni_anatomy()
    return tuple(block_mean(m, f) for m in (anat.gm, anat.wm, anat.csf))


def warp_healthy(anat, rng, spacing: int, shapes: Shapes = STANDARD.shapes) -> Healthy:
    """Random rotation/scale/shift of the anatomy so no two cases share one brain."""
    f = spacing
    out = tuple(s // f for s in anat.gm.shape)  # whole output voxels only
    angles = np.deg2rad(rng.uniform(-shapes.rotation_deg, shapes.rotation_deg, 3))
    rot = np.eye(3)
    for axis, a in enumerate(angles):
        c, s = np.cos(a), np.sin(a)
        r = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rot = rot @ r
    forward = rot @ np.diag(rng.uniform(*shapes.scale, 3))
    if shapes.head_scale != (1.0, 1.0):
        forward = forward * rng.uniform(*shapes.head_scale)
    centre = np.array(ndimage.center_of_mass(anat.brain))
    shift = rng.uniform(-shapes.shift, shapes.shift, 3)
    inverse = np.linalg.inv(forward)
    offset = centre - inverse @ (centre + shift)
    # the same warp expressed on the pooled grid: 1 mm coordinate x = f·o + (f−1)/2
    c0 = np.full(3, (f - 1) / 2.0)
    offset_pooled = (inverse @ c0 + offset - c0) / f
    gm, wm, csf = (
        ndimage.affine_transform(m, inverse, offset_pooled, output_shape=out, order=1, output=np.float32)
        for m in _pooled_anatomy(f)
    )
    return Healthy(gm, wm, csf, (gm + wm + csf) > 0.5, f, tuple(n * f for n in out), inverse, offset)


@dataclass
class Lesion:
    """The lesion at 1 mm inside its box: tissue masks, coordinates and the healthy tissue there."""

    box: tuple[slice, slice, slice]
    seed_vox: np.ndarray  #: in full 1 mm voxel coordinates
    necrosis: np.ndarray  #: bool masks inside box
    enhancing: np.ndarray
    oedema: np.ndarray
    coords: np.ndarray  #: (3, *box) voxel coordinates of the box
    healthy_1mm: tuple  #: gm, wm, csf, brain at 1 mm inside the box


_HALF_BOX = 56  # mm around the seed: core (≤ 20) + oedema (≤ 18) + events (≤ 15)


def _radial(u: np.ndarray, rng, amplitude: float, terms: int = 6) -> np.ndarray:
    """Smooth random radius multiplier on the sphere of directions ``u`` (3, ...): star-shaped blobs."""
    dirs = rng.normal(size=(terms, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freqs = rng.uniform(1.0, 3.0, terms)
    phases = rng.uniform(0, 2 * np.pi, terms)
    out = np.zeros(u.shape[1:], dtype=np.float32)
    for d, f, p in zip(dirs, freqs, phases):
        out += np.cos(f * np.pi * np.tensordot(d, u, axes=1) + p).astype(np.float32)
    return 1.0 + amplitude * out / np.sqrt(terms)


def make_lesion(h: Healthy, rng, shapes: Shapes = STANDARD.shapes) -> Lesion:
    """A star-shaped tumour (with satellites: an irregular union) in white matter: necrosis, an
    enhancing (sometimes broken, sometimes absent) rim and oedema grown along white matter."""
    # seed: searched on a fixed 4 mm grid so every spacing gets the same lesion
    wm4, brain4 = h.coarse_4mm()
    depth = ndimage.distance_transform_edt(brain4) * 4.0
    candidates = np.argwhere((wm4 > shapes.seed_wm) & (depth >= shapes.seed_depth))
    if len(candidates) == 0:
        candidates = np.argwhere(depth >= depth.max() * 0.8)
    seed = candidates[int(rng.integers(len(candidates)))] * 4.0 + 1.5 + rng.uniform(-1.5, 1.5, 3)
    # box edges on whole output voxels (so it pools exactly), and the same box for 1, 2 and 4 mm
    f = 4 if 4 % h.f == 0 else h.f
    lo = np.clip(np.floor((seed - _HALF_BOX) / f).astype(int) * f, 0, None)
    hi = np.minimum(np.ceil((seed + _HALF_BOX) / f).astype(int) * f, (np.array(h.shape) // f) * f)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    gm1, wm1, csf1, brain1 = h.box_1mm(box)
    coords = np.stack(np.meshgrid(*[np.arange(a, b, dtype=np.float32) for a, b in zip(lo, hi)], indexing="ij"))
    rel = coords - seed.astype(np.float32)[:, None, None, None]
    dist = np.sqrt((rel**2).sum(axis=0))
    u = rel / np.maximum(dist, 1e-3)
    brain = brain1 & (csf1 < 0.6)

    radius = rng.uniform(*shapes.radius) * _radial(u, rng, shapes.roughness)
    rim = rng.uniform(*shapes.rim) * _radial(u, rng, 0.15)
    core = (dist < radius) & brain
    necrosis = core & (dist < radius - rim)
    for _ in range(shapes.satellites):
        blob_core, blob_necrosis = _satellite(rel, radius.mean(), rim.mean(), shapes.roughness, rng)
        core |= blob_core & brain
        necrosis |= blob_necrosis & brain
    if shapes.non_enhancing:
        necrosis = core.copy()
    enhancing = core & ~necrosis
    if rng.random() < 0.5:  # broken rim: a sector that does not enhance (non-enhancing core, label 1)
        gap_dir = rng.normal(size=3)
        gap_dir /= np.linalg.norm(gap_dir)
        gap = np.tensordot(gap_dir, u, axes=1) > np.cos(np.deg2rad(rng.uniform(30, 55)))
        necrosis |= enhancing & gap
        enhancing &= ~gap

    # oedema grows from the core along white matter (geodesic dilation inside an allowed mask)
    noise = ndimage.gaussian_filter(rng.normal(size=dist.shape).astype(np.float32), 3.0)
    noise /= noise.std() + 1e-6
    near_core = ndimage.distance_transform_edt(~core) <= 2.0
    allowed = brain & ((wm1 > 0.35 + 0.12 * noise) | near_core)
    steps = int(round(rng.uniform(*shapes.oedema_steps)))
    grown = ndimage.binary_dilation(core, iterations=steps, mask=allowed)
    oedema = grown & ~core
    return Lesion(box, seed, necrosis, enhancing, oedema, coords, (gm1, wm1, csf1, brain1))


def _satellite(rel: np.ndarray, radius: float, rim: float, roughness: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """A second tumour blob touching or near the first: its core and its necrotic inside."""
    v = rng.normal(size=3)
    v /= np.linalg.norm(v)
    r = radius * rng.uniform(0.3, 0.7)
    d = rel - (v * radius * rng.uniform(0.6, 1.3)).astype(np.float32)[:, None, None, None]
    dist = np.sqrt((d**2).sum(axis=0))
    r_map = r * _radial(d / np.maximum(dist, 1e-3), rng, roughness)
    return dist < r_map, dist < r_map - rim


def place_events(h: Healthy, les: Lesion, rng, shapes: Shapes = STANDARD.shapes) -> dict[str, np.ndarray]:
    """FLAIR-only hyperintensity touching the lesion, and a small T1ce-only focus near it (1 mm box masks)."""
    lesion = les.necrosis | les.enhancing | les.oedema
    _, _, csf1, brain1 = les.healthy_1mm
    brain = brain1 & (csf1 < 0.5)
    rel = les.coords - les.seed_vox.astype(np.float32)[:, None, None, None]
    first = None
    events = {}
    # (radius mm, centre distance beyond the lesion border in radii, extra gap in mm)
    placements = (
        ("flair_only", shapes.flair_only_radius, (0.7, 1.1), (0.0, 0.0)),
        ("t1ce_focus", shapes.t1ce_focus_radius, (1.0, 1.0), (1.5, 5.0)),
    )
    for kind, radius_range, radii_range, gap_mm in placements:
        for _ in range(60):
            v = rng.normal(size=3)
            v /= np.linalg.norm(v)
            if first is not None and float(v @ first) > -0.2:
                continue  # put the two events on different sides of the lesion
            boundary = _boundary_along(lesion, les.seed_vox - np.array([s.start for s in les.box]), v)
            if boundary is None:
                continue
            r = rng.uniform(*radius_range)
            centre = boundary + v * (r * rng.uniform(*radii_range) + rng.uniform(*gap_mm))
            d = rel - (centre - (les.seed_vox - np.array([s.start for s in les.box])))[:, None, None, None].astype(
                np.float32
            )
            dist = np.sqrt((d**2).sum(axis=0))
            blob = (dist < r * _radial(d / np.maximum(dist, 1e-3), rng, 0.2)) & brain & ~lesion
            if blob.sum() >= 0.5 * (4 / 3) * np.pi * r**3:
                events[kind] = blob
                first = v
                break
        else:
            events[kind] = np.zeros_like(lesion)
    return events


def _boundary_along(mask: np.ndarray, start: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """First point outside ``mask`` marching from ``start`` along ``v`` (box voxel coordinates)."""
    for t in np.arange(0.0, 60.0, 0.5):
        p = start + t * v
        idx = np.round(p).astype(int)
        if np.any(idx < 0) or np.any(idx >= mask.shape):
            return None
        if not mask[tuple(idx)] and t > 1.0:
            return p
    return None
