"""Partial volume, labels and the four contrasts: tissue fractions to images, as a scanner would make them.

Lesion tissue displaces healthy tissue at 1 mm before fractions are pooled to the output grid; the
contrasts are fraction-weighted sums of the tissues' signals (:mod:`.mri_signal`), then blurred by
the PSF, multiplied by a bias field and given Rician noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from ..io import geometry
from ..io.labels import ED, ET, NCR
from ..io.modalities import MODALITIES
from .domain import STANDARD, Domain
from .mri_signal import HEALTHY, LESION

if TYPE_CHECKING:
    from .lesion import Healthy, Lesion

#: internal label of each lesion tissue
LESION_LABEL = {"necrosis": NCR, "enhancing": ET, "oedema": ED}


def _soft(mask: np.ndarray) -> np.ndarray:
    """Soft (~1 mm) edges: a binary 1 mm mask blurred into fractions."""
    return ndimage.gaussian_filter(mask.astype(np.float32), 0.6)


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Average ``f``³ blocks of voxels (exact partial volume from a finer grid)."""
    if f == 1:
        return a.astype(np.float32, copy=False)
    s = tuple(n // f for n in a.shape)
    return (
        a[: s[0] * f, : s[1] * f, : s[2] * f].reshape(s[0], f, s[1], f, s[2], f).mean(axis=(1, 3, 5), dtype=np.float32)
    )


def pool_fractions(h: Healthy, les: Lesion, events: dict[str, np.ndarray], affine: np.ndarray, f: int):
    """Fractions on the output grid; inside the lesion box they are pooled from 1 mm detail.

    Lesion tissue displaces healthy tissue voxel by voxel at 1 mm before pooling (partial volume).
    """
    gm1, wm1, csf1, brain1 = les.healthy_1mm
    out_box = tuple(slice(b.start // f, b.stop // f) for b in les.box)
    soft = {
        name: _soft(mask) * brain1
        for name, mask in (
            ("necrosis", les.necrosis),
            ("enhancing", les.enhancing),
            ("oedema", les.oedema),
            ("flair_only", events["flair_only"]),
            ("t1ce_focus", events["t1ce_focus"]),
        )
    }
    keep = np.clip(1.0 - soft["necrosis"] - soft["enhancing"] - soft["oedema"], 0.0, 1.0)
    frac = {}
    for name, outside, inside_1mm in (("csf", h.csf, csf1), ("gm", h.gm, gm1), ("wm", h.wm, wm1)):
        healthy = outside.copy()
        healthy[out_box] = block_mean(inside_1mm, f)
        frac[f"healthy_{name}"] = healthy
        displaced = healthy.copy()
        displaced[out_box] = block_mean(inside_1mm * keep, f)
        frac[name] = displaced
    for name, vol in soft.items():
        pooled = np.zeros(h.brain.shape, dtype=np.float32)
        pooled[out_box] = block_mean(vol, f)
        frac[name] = pooled
    brain = h.brain.copy()
    brain[out_box] = block_mean(brain1.astype(np.float32), f) >= 0.5
    return frac, geometry.block_affine(affine, f), brain


def labels_from_fractions(frac: dict[str, np.ndarray]) -> np.ndarray:
    """Label = the dominant lesion tissue where lesion tissue fills at least half the voxel."""
    stack = np.stack([frac[k] for k in LESION])
    labels = np.array([LESION_LABEL[k] for k in LESION], dtype=np.uint8)[np.argmax(stack, axis=0)]
    return np.where(stack.sum(axis=0) >= 0.5, labels, 0).astype(np.uint8)


def render_contrasts(
    frac: dict[str, np.ndarray], domain: Domain = STANDARD
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Noise-free images without (``clean``) and with (``full``) the lesion and conflict events."""
    clean, full = {}, {}
    for m in MODALITIES:
        s = {t: domain.signal(t, m) for t in domain.tissues}
        clean[m] = sum(frac[f"healthy_{t}"] * s[t] for t in HEALTHY).astype(np.float32)
        img = sum(frac[t] * s[t] for t in (*HEALTHY, *LESION)).astype(np.float32)
        if m == "flair":  # tissue looks like oedema on FLAIR only
            img = (1 - frac["flair_only"]) * img + frac["flair_only"] * s["oedema"]
        if m == "t1ce":  # healthy tissue takes up contrast, seen on T1ce only
            gd = sum(frac[t] * domain.signal(t, m, extra_gd=domain.focus_gd) for t in HEALTHY)
            img = img + frac["t1ce_focus"] * (gd - sum(frac[t] * s[t] for t in HEALTHY))
        full[m] = img.astype(np.float32)
    return clean, full


def imaging_chain(
    clean, full, brain, rng, domain: Domain = STANDARD, spacing: float = 1.0
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """PSF, thick slices, bias field, ghost and Rician noise; visibility = |lesion − lesion-free| > 2σ after the PSF."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in brain.shape], indexing="ij"))
    images, visible = {}, []
    for m in MODALITIES:
        acq = domain.imaging[m]
        sigma = acq.noise * domain.brightest_healthy(m)
        blurred = ndimage.gaussian_filter(full[m], acq.psf)
        visible.append(np.abs(blurred - ndimage.gaussian_filter(clean[m], acq.psf)) > 2 * sigma)
        blurred = thick_slices(blurred, acq.thick_axis, acq.thickness / spacing)
        coeffs = rng.normal(size=9)
        terms = [
            grid[0],
            grid[1],
            grid[2],
            grid[0] * grid[1],
            grid[0] * grid[2],
            grid[1] * grid[2],
            grid[0] ** 2,
            grid[1] ** 2,
            grid[2] ** 2,
        ]
        field_ = sum(c * t for c, t in zip(coeffs, terms))
        field_ = 1.0 + acq.bias * field_ / (np.abs(field_).max() + 1e-6)
        biased = blurred * field_
        if acq.ghost > 0:  # a half-FOV copy along the phase-encoding axis (motion, N/2 ghost)
            biased = biased + acq.ghost * np.roll(biased, brain.shape[0] // 2, axis=0)
        real = biased + rng.normal(0, sigma, brain.shape).astype(np.float32)
        imag = rng.normal(0, sigma, brain.shape).astype(np.float32)
        noisy = np.sqrt(real**2 + imag**2) * brain
        scale = 1000.0 / domain.brightest_healthy(m)
        images[m] = (noisy * scale).astype(np.float32)
    return images, np.stack(visible) & brain[None]


def thick_slices(img: np.ndarray, axis: int, voxels: float) -> np.ndarray:
    """An acquisition with slices ``voxels`` thick along ``axis``, interpolated back to the grid.

    Slice profile = Gaussian of that FWHM, sampled once per slice, then linear interpolation: the
    staircase and through-plane blur of a real 5 mm scan resampled to 1 mm.
    """
    if voxels <= 1.2:
        return img
    n = img.shape[axis]
    smooth = ndimage.gaussian_filter1d(img, voxels / 2.355, axis=axis)
    count = max(2, int(round((n - 1) / voxels)) + 1)
    centres = np.linspace(0, n - 1, count)
    coarse = np.take(smooth, np.round(centres).astype(int), axis=axis)
    pos = np.arange(n) * (count - 1) / (n - 1)
    lo = np.minimum(np.floor(pos).astype(int), count - 2)
    w = (pos - lo).astype(np.float32)
    shape = [1, 1, 1]
    shape[axis] = n
    w = w.reshape(shape)
    out = np.take(coarse, lo, axis=axis) * (1 - w) + np.take(coarse, lo + 1, axis=axis) * w
    return out.astype(np.float32)
