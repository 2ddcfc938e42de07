"""Brain-tumour phantom with known inter-modal conflict (DESIGN.md §4).

Real anatomy (MNI ICBM152 2009a), a lesion with necrosis, enhancing rim and oedema, the four MR
contrasts rendered from tissue fractions with the signal equations, and — on purpose — regions
where the modalities disagree so that the right label is genuinely uncertain:

* ``flair_only``: FLAIR hyperintensity next to the lesion, normal on T1, T1ce and T2;
* ``t1ce_focus``: a small enhancing focus on T1ce without T2/FLAIR signal (vessel or tumour?);
* ``misregistration`` (optional): T2 or FLAIR shifted by 1–2 mm (1–2 native voxels), so borders disagree.

Raters agree on consistent tissue and each includes or excludes every conflict region at random.
Geometry is built at 1 mm and block-averaged to the output spacing, which is exact partial volume.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from . import geometry
from . import labels as label_conv
from .anatomy import load_mni_anatomy
from .case import Case
from .labels import ED, ET, NCR
from .modalities import MODALITIES, MSD_ORDER, NAMING, SEPARATOR
from .nifti import atomic_write, check_writable, write_on_grid
from .mri_signal import HEALTHY, LESION, TISSUES, noise_sigma, signal

GENERATOR_VERSION = 1
Progress = Callable[[float, str], None]

#: internal label of each lesion tissue
_LESION_LABEL = {"necrosis": NCR, "enhancing": ET, "oedema": ED}


@dataclass
class ConflictEvent:
    """One region where the modalities disagree, and which raters label it as lesion."""

    kind: str  #: flair_only | t1ce_focus | misregistration
    modality: str  #: the modality that sees it (or is shifted)
    label: int | None  #: label given by raters who include it (None: they follow the shifted modality)
    centre_mm: list[float]
    volume_ml: float
    included_by: list[int] = field(default_factory=list)
    detail: str = ""


@dataclass
class Phantom:
    """A generated case with its ground truth, all arrays RAS+ on the grid of ``affine``."""

    name: str
    seed: int
    spacing: int
    affine: np.ndarray
    images: dict[str, np.ndarray]  #: float32, arbitrary units (max healthy tissue ≈ 1000)
    labels: np.ndarray  #: uint8, internal BraTS 2021 labels, conflict events excluded
    visibility: np.ndarray  #: bool (M, X, Y, Z): lesion/event changes modality m by > 2σ
    conflict: np.ndarray  #: bool: voxels where raters may disagree
    raters: np.ndarray  #: uint8 (R, X, Y, Z)
    events: list[ConflictEvent]
    fractions: dict[str, np.ndarray]  #: tissue fractions (csf, gm, wm, necrosis, enhancing, oedema, events)
    brain: np.ndarray  #: bool

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    def to_case(self) -> Case:
        return Case.from_arrays(self.images, self.affine, name=self.name, labels=self.labels, layout="phantom")


def make_phantom(seed: int = 0, spacing: int = 2, n_raters: int = 4, misregistration: bool | None = None,
                 progress: Progress | None = None) -> Phantom:
    """Generate one deterministic phantom case.

    ``spacing``: output voxel size in whole mm (1 = native MNI grid, 2 = fast).
    ``misregistration``: shift T2 or FLAIR by 1–2 mm; None lets the seed decide (half the cases).
    ``progress(fraction, message)`` is called as the work advances.
    """
    if int(spacing) != spacing or spacing < 1:
        raise ValueError(f"spacing must be a whole number of mm >= 1 (1 = native, 2 = fast), got {spacing}")
    if n_raters < 1:
        raise ValueError(f"n_raters must be >= 1, got {n_raters}")
    spacing = int(spacing)
    report = progress or (lambda f, m: None)
    # one generator per stage, so the lesion and raters do not depend on the spacing's array sizes
    rng, imaging_rng, rater_rng = (np.random.default_rng(s) for s in
                                   np.random.SeedSequence([seed, GENERATOR_VERSION]).spawn(3))
    if misregistration is None:
        misregistration = bool(rng.random() < 0.5)

    report(0.0, "loading MNI anatomy")
    anat = load_mni_anatomy()
    report(0.1, "varying the anatomy")
    healthy = _warp_healthy(anat, rng, spacing)
    report(0.35, "growing the lesion")
    lesion = _make_lesion(healthy, rng)
    report(0.55, "placing conflict regions")
    events_1mm = _place_events(healthy, lesion, rng)
    report(0.65, f"pooling to {spacing} mm")
    frac, affine, brain = _pool_fractions(healthy, lesion, events_1mm, anat.affine, spacing)
    labels = _labels_from_fractions(frac)
    report(0.75, "rendering T1, T1ce, T2, FLAIR")
    clean, full = _render(frac)
    events = _conflict_events(frac, labels, brain, affine)
    if misregistration:
        event = _misregister(clean, full, frac, labels, brain, affine, spacing, rng, taken=_union(events, brain))
        if event is not None:
            events.append(event)
    report(0.85, "imaging chain: PSF, bias field, Rician noise")
    images, visibility = _imaging_chain(clean, full, brain, imaging_rng)
    report(0.95, "raters")
    raters = _rate(labels, events, n_raters, rater_rng)
    report(1.0, "done")
    return Phantom(f"phantom-{seed:05d}", seed, spacing, affine, images, labels, visibility, _union(events, brain),
                   raters, [e.event for e in events], frac, brain)


@dataclass
class _Footprint:
    """A conflict event with its voxels and the labels raters give there when they include it."""

    event: ConflictEvent
    mask: np.ndarray
    labels: np.ndarray


def _union(events: list[_Footprint], like: np.ndarray) -> np.ndarray:
    return np.logical_or.reduce([e.mask for e in events]) if events else np.zeros_like(like)


def _volume_ml(mask: np.ndarray, affine: np.ndarray) -> float:
    return float(mask.sum()) * abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0


def _conflict_events(frac, labels, brain, affine) -> list[_Footprint]:
    """The FLAIR-only and T1ce-only regions, where at least half of a voxel is the event."""
    out: list[_Footprint] = []
    taken = labels > 0
    for kind, modality, label in (("flair_only", "flair", ED), ("t1ce_focus", "t1ce", ET)):
        mask = (frac[kind] >= 0.5) & ~taken & brain
        if mask.any():
            taken |= mask
            event = ConflictEvent(kind, modality, label, _centre_mm(mask, affine), _volume_ml(mask, affine),
                                  detail=_EVENT_DETAIL[kind])
            out.append(_Footprint(event, mask, np.where(mask, label, 0).astype(np.uint8)))
    return out


def _misregister(clean, full, frac, labels, brain, affine, spacing, rng, taken) -> _Footprint | None:
    """Shift T2 or FLAIR by 1–2 mm; the band where its lesion border differs becomes a conflict."""
    modality = ("t2", "flair")[int(rng.integers(2))]
    shift = np.zeros(3)
    shift[int(rng.integers(3))] = rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 2.0) / spacing
    for images in (clean, full):
        images[modality] = ndimage.shift(images[modality], shift, order=1, mode="nearest")
    shifted_labels = _labels_from_fractions({k: ndimage.shift(frac[k], shift, order=1, mode="constant") for k in LESION})
    band = ((shifted_labels > 0) != (labels > 0)) & brain & ~taken
    if not band.any():
        return None
    event = ConflictEvent("misregistration", modality, None, _centre_mm(band, affine), _volume_ml(band, affine),
                          detail=f"{modality} shifted by {np.round(shift * spacing, 2).tolist()} mm")
    return _Footprint(event, band, np.where(band, shifted_labels, labels).astype(np.uint8))


def _rate(labels, events: list[_Footprint], n_raters: int, rng) -> np.ndarray:
    """Raters give the consensus labels, and each includes or excludes each event at random.

    With two or more raters every event is included by some and excluded by others, so each
    conflict region stays genuinely ambiguous in the ground truth.
    """
    raters = np.repeat(labels[None], n_raters, axis=0)
    for fp in events:
        include = rng.random(n_raters) < 0.5
        if n_raters >= 2 and (include.all() or not include.any()):
            include[int(rng.integers(n_raters))] ^= True
        fp.event.included_by = [int(r) for r in np.flatnonzero(include)]
        for r in fp.event.included_by:
            raters[r][fp.mask] = fp.labels[fp.mask]
    return raters


_EVENT_DETAIL = {
    "flair_only": "FLAIR hyperintensity next to the lesion, normal on T1/T1ce/T2: infiltration or artefact?",
    "t1ce_focus": "enhancing focus on T1ce only, no T2/FLAIR signal: vessel or tumour?",
}


# ----------------------------------------------------------------------------------------------
# anatomy and lesion geometry at 1 mm


@dataclass
class _Healthy:
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
        gm, wm, csf = (ndimage.affine_transform(m, self.inverse, offset, output_shape=tuple(n // 4 for n in self.shape),
                                                order=1, output=np.float32) for m in _pooled_anatomy(4))
        return wm, (gm + wm + csf) > 0.5

    def box_1mm(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """GM, WM, CSF fractions and brain mask at 1 mm inside ``box`` (1 mm voxel slices)."""
        anat = load_mni_anatomy()
        lo = np.array([b.start for b in box], dtype=float)
        out_shape = tuple(b.stop - b.start for b in box)
        gm, wm, csf = (ndimage.affine_transform(m, self.inverse, self.inverse @ lo + self.offset,
                                                output_shape=out_shape, order=1, output=np.float32)
                       for m in (anat.gm, anat.wm, anat.csf))
        return gm, wm, csf, (gm + wm + csf) > 0.5


@lru_cache(maxsize=4)
def _pooled_anatomy(f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    anat = load_mni_anatomy()
    return tuple(_pool(m, f) for m in (anat.gm, anat.wm, anat.csf))


def _warp_healthy(anat, rng, spacing: int) -> _Healthy:
    """Small random rotation/scale/shift of the anatomy so no two cases share one brain."""
    f = spacing
    out = tuple(s // f for s in anat.gm.shape)  # whole output voxels only
    angles = np.deg2rad(rng.uniform(-5, 5, 3))
    rot = np.eye(3)
    for axis, a in enumerate(angles):
        c, s = np.cos(a), np.sin(a)
        r = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rot = rot @ r
    forward = rot @ np.diag(rng.uniform(0.95, 1.05, 3))
    centre = np.array(ndimage.center_of_mass(anat.brain))
    shift = rng.uniform(-3, 3, 3)
    inverse = np.linalg.inv(forward)
    offset = centre - inverse @ (centre + shift)
    # the same warp expressed on the pooled grid: 1 mm coordinate x = f·o + (f−1)/2
    c0 = np.full(3, (f - 1) / 2.0)
    offset_pooled = (inverse @ c0 + offset - c0) / f
    gm, wm, csf = (ndimage.affine_transform(m, inverse, offset_pooled, output_shape=out, order=1, output=np.float32)
                   for m in _pooled_anatomy(f))
    return _Healthy(gm, wm, csf, (gm + wm + csf) > 0.5, f, tuple(n * f for n in out), inverse, offset)


@dataclass
class _Lesion:
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


def _make_lesion(h: _Healthy, rng) -> _Lesion:
    # seed: deep white matter, searched on a fixed 4 mm grid so every spacing gets the same lesion
    wm4, brain4 = h.coarse_4mm()
    depth = ndimage.distance_transform_edt(brain4) * 4.0
    candidates = np.argwhere((wm4 > 0.7) & (depth >= 24))
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
    dist = np.sqrt((rel ** 2).sum(axis=0))
    u = rel / np.maximum(dist, 1e-3)
    brain = brain1 & (csf1 < 0.6)

    radius = rng.uniform(9.0, 16.0) * _radial(u, rng, 0.25)
    rim = rng.uniform(2.5, 4.5) * _radial(u, rng, 0.15)
    core = (dist < radius) & brain
    necrosis = core & (dist < radius - rim)
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
    steps = int(round(rng.uniform(6.0, 18.0)))
    grown = ndimage.binary_dilation(core, iterations=steps, mask=allowed)
    oedema = grown & ~core
    return _Lesion(box, seed, necrosis, enhancing, oedema, coords, (gm1, wm1, csf1, brain1))


def _place_events(h: _Healthy, les: _Lesion, rng) -> dict[str, np.ndarray]:
    """FLAIR-only hyperintensity touching the lesion, and a small T1ce-only focus near it (1 mm box masks)."""
    lesion = les.necrosis | les.enhancing | les.oedema
    _, _, csf1, brain1 = les.healthy_1mm
    brain = brain1 & (csf1 < 0.5)
    rel = les.coords - les.seed_vox.astype(np.float32)[:, None, None, None]
    first = None
    events = {}
    # (radius mm, centre distance beyond the lesion border in radii, extra gap in mm)
    placements = (("flair_only", (4.0, 7.0), (0.7, 1.1), (0.0, 0.0)), ("t1ce_focus", (3.0, 4.5), (1.0, 1.0), (1.5, 5.0)))
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
            d = rel - (centre - (les.seed_vox - np.array([s.start for s in les.box])))[:, None, None, None].astype(np.float32)
            dist = np.sqrt((d ** 2).sum(axis=0))
            blob = (dist < r * _radial(d / np.maximum(dist, 1e-3), rng, 0.2)) & brain & ~lesion
            if blob.sum() >= 0.5 * (4 / 3) * np.pi * r ** 3:
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


# ----------------------------------------------------------------------------------------------
# partial volume, labels, rendering


def _soft(mask: np.ndarray) -> np.ndarray:
    """Soft (~1 mm) edges: a binary 1 mm mask blurred into fractions."""
    return ndimage.gaussian_filter(mask.astype(np.float32), 0.6)


def _pool(a: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return a.astype(np.float32, copy=False)
    s = tuple(n // f for n in a.shape)
    return a[: s[0] * f, : s[1] * f, : s[2] * f].reshape(s[0], f, s[1], f, s[2], f).mean(axis=(1, 3, 5), dtype=np.float32)


def _pool_fractions(h: _Healthy, les: _Lesion, events: dict[str, np.ndarray], affine: np.ndarray, f: int):
    """Fractions on the output grid; inside the lesion box they are pooled from 1 mm detail.

    Lesion tissue displaces healthy tissue voxel by voxel at 1 mm before pooling (partial volume).
    """
    gm1, wm1, csf1, brain1 = les.healthy_1mm
    out_box = tuple(slice(b.start // f, b.stop // f) for b in les.box)
    soft = {name: _soft(mask) * brain1 for name, mask in (
        ("necrosis", les.necrosis), ("enhancing", les.enhancing), ("oedema", les.oedema),
        ("flair_only", events["flair_only"]), ("t1ce_focus", events["t1ce_focus"]))}
    keep = np.clip(1.0 - soft["necrosis"] - soft["enhancing"] - soft["oedema"], 0.0, 1.0)
    frac = {}
    for name, outside, inside_1mm in (("csf", h.csf, csf1), ("gm", h.gm, gm1), ("wm", h.wm, wm1)):
        healthy = outside.copy()
        healthy[out_box] = _pool(inside_1mm, f)
        frac[f"healthy_{name}"] = healthy
        displaced = healthy.copy()
        displaced[out_box] = _pool(inside_1mm * keep, f)
        frac[name] = displaced
    for name, vol in soft.items():
        pooled = np.zeros(h.brain.shape, dtype=np.float32)
        pooled[out_box] = _pool(vol, f)
        frac[name] = pooled
    brain = h.brain.copy()
    brain[out_box] = _pool(brain1.astype(np.float32), f) >= 0.5
    return frac, geometry.block_affine(affine, f), brain


def _labels_from_fractions(frac: dict[str, np.ndarray]) -> np.ndarray:
    """Label = the dominant lesion tissue where lesion tissue fills at least half the voxel."""
    stack = np.stack([frac[k] for k in LESION])
    labels = np.array([_LESION_LABEL[k] for k in LESION], dtype=np.uint8)[np.argmax(stack, axis=0)]
    return np.where(stack.sum(axis=0) >= 0.5, labels, 0).astype(np.uint8)


def _render(frac: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Noise-free images without (``clean``) and with (``full``) the lesion and conflict events."""
    clean, full = {}, {}
    for m in MODALITIES:
        s = {t: signal(TISSUES[t], m) for t in TISSUES}
        clean[m] = sum(frac[f"healthy_{t}"] * s[t] for t in HEALTHY).astype(np.float32)
        img = sum(frac[t] * s[t] for t in (*HEALTHY, *LESION)).astype(np.float32)
        if m == "flair":  # tissue looks like oedema on FLAIR only
            img = (1 - frac["flair_only"]) * img + frac["flair_only"] * s["oedema"]
        if m == "t1ce":  # healthy tissue takes up contrast, seen on T1ce only
            gd = sum(frac[t] * signal(TISSUES[t], m, extra_gd=0.5) for t in HEALTHY)
            img = img + frac["t1ce_focus"] * (gd - sum(frac[t] * s[t] for t in HEALTHY))
        full[m] = img.astype(np.float32)
    return clean, full


def _imaging_chain(clean, full, brain, rng) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """PSF, bias field and Rician noise; visibility = |lesion − lesion-free| > 2σ after the PSF."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in brain.shape], indexing="ij"))
    images, visible = {}, []
    for m in MODALITIES:
        sigma = noise_sigma(m)
        blurred = ndimage.gaussian_filter(full[m], 0.42)  # FWHM ≈ one voxel
        visible.append(np.abs(blurred - ndimage.gaussian_filter(clean[m], 0.42)) > 2 * sigma)
        coeffs = rng.normal(size=9)
        terms = [grid[0], grid[1], grid[2], grid[0] * grid[1], grid[0] * grid[2], grid[1] * grid[2],
                 grid[0] ** 2, grid[1] ** 2, grid[2] ** 2]
        field_ = sum(c * t for c, t in zip(coeffs, terms))
        field_ = 1.0 + 0.1 * field_ / (np.abs(field_).max() + 1e-6)
        biased = blurred * field_
        real = biased + rng.normal(0, sigma, brain.shape).astype(np.float32)
        imag = rng.normal(0, sigma, brain.shape).astype(np.float32)
        noisy = np.sqrt(real ** 2 + imag ** 2) * brain
        scale = 1000.0 / max(signal(TISSUES[t], m) for t in HEALTHY)
        images[m] = (noisy * scale).astype(np.float32)
    return images, np.stack(visible) & brain[None]


def _centre_mm(mask: np.ndarray, affine: np.ndarray) -> list[float]:
    return [round(float(v), 1) for v in nib.affines.apply_affine(affine, ndimage.center_of_mass(mask))]


# ----------------------------------------------------------------------------------------------
# writing a phantom case to disk

FORMATS = ("brats2021", "brats2023", "msd")


def phantom_paths(name: str, out_dir: Path, fmt: str, n_raters: int) -> dict[str, Path]:
    """Where each file of a phantom case goes, in the naming of ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "msd":
        paths = {"image": out_dir / "imagesTr" / f"{name}.nii.gz", "seg": out_dir / "labelsTr" / f"{name}.nii.gz"}
    else:
        sep = SEPARATOR[fmt]
        paths = {m: out_dir / f"{name}{sep}{NAMING[fmt][m]}.nii.gz" for m in (*MODALITIES, "seg")}
    truth = out_dir / "truth"
    paths["conflict"] = truth / "conflict.nii.gz"
    paths["visibility"] = truth / "visibility.nii.gz"
    for r in range(n_raters):
        paths[f"rater{r + 1}"] = truth / f"rater{r + 1}.nii.gz"
    paths["metadata"] = truth / "phantom.json"
    return paths


def save_phantom(ph: Phantom, out_dir: str | Path, fmt: str = "brats2021", *, overwrite: bool = False,
                 progress: Progress | None = None) -> dict[str, Path]:
    """Write the four images, the label map and the ground truth as NIfTI (+ ``truth/phantom.json``).

    Nothing is written if any target exists and ``overwrite`` is False; each file is written atomically.
    Label maps use the label values of ``fmt`` (BraTS 2021: ET = 4; BraTS 2023 and MSD: ET = 3).
    """
    out_dir = Path(out_dir)
    paths = phantom_paths(ph.name, out_dir, fmt, len(ph.raters))
    check_writable(list(paths.values()), overwrite)
    grid = ph.to_case().grid
    convention = "msd" if fmt == "msd" else fmt
    steps = [(k, p) for k, p in paths.items() if k != "metadata"]
    for i, (key, path) in enumerate(steps):
        if progress:
            progress(i / len(steps), f"writing {path.name}")
        if key == "image":
            data = np.stack([ph.images[m] for m in MSD_ORDER], axis=-1)
            write_on_grid(data, grid, path, overwrite=overwrite, dtype=np.float32, description="FLAIR,T1w,T1gd,T2w")
        elif key in MODALITIES:
            write_on_grid(ph.images[key], grid, path, overwrite=overwrite, dtype=np.float32, description=f"phantom {key}")
        elif key == "seg" or key.startswith("rater"):
            lab = ph.labels if key == "seg" else ph.raters[int(key[5:]) - 1]
            write_on_grid(label_conv.from_internal(lab, convention), grid, path, overwrite=overwrite, dtype=np.uint8,
                          description=f"{convention} labels")
        elif key == "conflict":
            write_on_grid(ph.conflict, grid, path, overwrite=overwrite, dtype=np.uint8, description="conflict mask")
        elif key == "visibility":
            write_on_grid(np.moveaxis(ph.visibility, 0, -1), grid, path, overwrite=overwrite, dtype=np.uint8,
                          description="visibility " + ",".join(MODALITIES))
    meta = {
        "name": ph.name, "seed": ph.seed, "spacing_mm": ph.spacing, "generator_version": GENERATOR_VERSION,
        "format": fmt, "label_convention": convention, "visibility_order": list(MODALITIES),
        "n_raters": int(len(ph.raters)),
        "events": [asdict(e) for e in ph.events],
        "volumes_ml": {name: float((ph.labels == v).sum() * ph.voxel_volume_ml)
                       for v, name in label_conv.LABEL_NAMES.items() if v},
        "conflict_ml": float(ph.conflict.sum() * ph.voxel_volume_ml),
        "files": {k: str(p.relative_to(out_dir)) for k, p in paths.items()},
    }
    atomic_write(paths["metadata"], lambda tmp: tmp.write_text(json.dumps(meta, indent=2)), overwrite=overwrite)
    if progress:
        progress(1.0, "written")
    return paths
