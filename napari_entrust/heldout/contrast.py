"""The four contrasts at 3 T with randomised sequences, and an imaging chain unlike the phantom's.

Tissue parameters are 3 T values (longer T1 than the phantom's 1.5 T table; oedema T1-hypointense),
jittered per case. T1 and T1ce are inversion-prepared gradient echoes (MPRAGE-like), T2 a turbo
spin echo and FLAIR an inversion recovery whose inversion time nulls this case's CSF. The imaging
chain acquires each modality with its own slice thickness (1–5 mm, averaged then interpolated
back to 1 mm, as upsampled clinical scans are), in-plane blur, a bias field made of broad
Gaussian bumps, Rician noise of random level, sometimes a ghost in one modality, then skull
strips and stores integers, as BraTS files hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: tissue -> (T1 ms, T2 ms, proton density) at 3 T
TISSUES_3T = {
    "wm": (832.0, 80.0, 0.69),
    "gm": (1331.0, 110.0, 0.80),
    "deep_gm": (1200.0, 90.0, 0.78),
    "csf": (4000.0, 2000.0, 1.00),
    "oedema": (1250.0, 150.0, 0.86),
    "enhancing": (1500.0, 120.0, 0.85),
    "necrosis": (2600.0, 320.0, 0.92),
    "fluid": (3600.0, 1200.0, 0.98),
}
R1_GD_3T = 3.5  #: s⁻¹ mM⁻¹


@dataclass(frozen=True)
class Sequence:
    """One acquisition: its kind and timing (ms), and how the scanner sampled it."""

    kind: str  #: ir_gre (T1, T1ce), tse (T2) or flair
    tr: float
    te: float
    ti: float = 0.0
    slice_mm: int = 1  #: through-plane thickness
    blur_mm: float = 0.4  #: in-plane PSF σ
    noise: float = 0.02  #: Rician σ as a share of the brightest tissue's signal


def random_tissues(rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    """This case's tissue parameters: the 3 T table with ±8 % T1/T2 and ±3 % PD."""
    return {
        t: (t1 * rng.uniform(0.92, 1.08), t2 * rng.uniform(0.92, 1.08), pd * rng.uniform(0.97, 1.03))
        for t, (t1, t2, pd) in TISSUES_3T.items()
    }


def random_sequences(rng: np.random.Generator, csf_t1: float) -> dict[str, Sequence]:
    """Sequence parameters per modality, drawn for this case."""

    def chain() -> dict:
        return {
            "slice_mm": int(rng.choice([1, 1, 2, 3, 4, 5])),
            "blur_mm": rng.uniform(0.3, 0.7),
            "noise": rng.uniform(0.01, 0.04),
        }

    flair_tr = rng.uniform(8000, 11000)
    null_ti = csf_t1 * np.log(2 / (1 + np.exp(-flair_tr / csf_t1)))  # CSF's magnetisation crosses zero here
    return {
        "t1": Sequence("ir_gre", rng.uniform(1900, 2400), rng.uniform(2.5, 4), rng.uniform(850, 1100), **chain()),
        "t1ce": Sequence("ir_gre", rng.uniform(1900, 2400), rng.uniform(2.5, 4), rng.uniform(850, 1100), **chain()),
        "t2": Sequence("tse", rng.uniform(4000, 6500), rng.uniform(85, 115), **chain()),
        "flair": Sequence("flair", flair_tr, rng.uniform(90, 130), null_ti * rng.uniform(0.97, 1.03), **chain()),
    }


def tissue_signal(seq: Sequence, t1: float, t2: float, pd: float) -> float:
    """Noise-free signal of one pure tissue in one sequence."""
    e_tr, e_ti = np.exp(-seq.tr / t1), np.exp(-seq.ti / t1)
    if seq.kind == "ir_gre":  # inversion-prepared gradient echo, short TE: T1 weighting only
        return float(pd * abs(1 - 2 * e_ti / (1 + e_tr)))
    if seq.kind == "tse":
        return float(pd * (1 - e_tr) * np.exp(-seq.te / t2))
    return float(pd * abs(1 - 2 * e_ti + e_tr) * np.exp(-seq.te / t2))  # FLAIR


def render(fractions: dict[str, np.ndarray], seq: Sequence, tissues: dict, gd_mm: dict[str, float]) -> np.ndarray:
    """The fraction-weighted sum of the tissues' signals; ``gd_mm``: contrast agent per tissue (T1ce).

    A tissue named ``"wm+gd"`` is white matter with contrast agent (its uptake in ``gd_mm``).
    """
    out = np.zeros(next(iter(fractions.values())).shape, np.float32)
    for tissue, frac in fractions.items():
        t1, t2, pd = tissues[tissue.split("+")[0]]
        if gd_mm.get(tissue):
            t1 = 1.0 / (1.0 / t1 + R1_GD_3T * gd_mm[tissue] / 1000.0)
        out += np.float32(tissue_signal(seq, t1, t2, pd)) * frac
    return out


def _bias(rng: np.random.Generator, shape) -> np.ndarray:
    """A smooth multiplicative field: 3–6 broad Gaussian bumps, 5–20 % at most."""
    grids = [np.linspace(0, 1, n, dtype=np.float32) for n in shape]
    field = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(3, 7))):
        centre, width, sign = rng.uniform(0, 1, 3), rng.uniform(0.25, 0.6), rng.choice([-1.0, 1.0])
        bump = [np.exp(-((g - c) ** 2) / (2 * width**2)) for g, c in zip(grids, centre)]
        field += np.float32(sign) * bump[0][:, None, None] * bump[1][None, :, None] * bump[2][None, None, :]
    return 1 + rng.uniform(0.05, 0.2) * field / (np.abs(field).max() + 1e-6)


def _thick_slices(image: np.ndarray, thickness: int) -> np.ndarray:
    """Acquired with ``thickness`` mm axial slices, then interpolated back to 1 mm."""
    if thickness <= 1:
        return image
    nz = image.shape[2] // thickness
    thick = image[..., : nz * thickness].reshape(*image.shape[:2], nz, thickness).mean(-1)
    positions = (np.arange(image.shape[2]) - (thickness - 1) / 2) / thickness
    return ndimage.map_coordinates(
        thick,
        np.meshgrid(np.arange(image.shape[0]), np.arange(image.shape[1]), positions, indexing="ij"),
        order=1,
        mode="nearest",
    )


def acquire(
    clean: np.ndarray, seq: Sequence, brain: np.ndarray, reference: float, rng: np.random.Generator, ghost: float = 0.0
) -> np.ndarray:
    """The imaging chain of one modality; ``reference``: the brightest tissue's signal (noise scale)."""
    image = _thick_slices(ndimage.gaussian_filter(clean, (seq.blur_mm, seq.blur_mm, 0.0)), seq.slice_mm)
    image = image * _bias(rng, clean.shape)
    if ghost:
        image = image + ghost * np.roll(image, image.shape[1] // 2, axis=1)
    sigma = seq.noise * reference
    real = image + rng.normal(0, sigma, image.shape).astype(np.float32)
    imag = rng.normal(0, sigma, image.shape).astype(np.float32)
    return (np.sqrt(real**2 + imag**2) * brain).astype(np.float32)


def to_stored(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scaled to a random integer range (the 99.5th percentile of the brain at 400–3000), as int16."""
    inside = image[image > 0]
    top = float(np.percentile(inside, 99.5)) if inside.size else 1.0
    return np.clip(np.rint(image * rng.uniform(400, 3000) / top), 0, 32767).astype(np.int16)


def brightest(seq: Sequence, tissues: dict) -> float:
    """The signal of the brightest healthy tissue (what the noise level is relative to)."""
    return max(tissue_signal(seq, *tissues[t]) for t in ("wm", "gm", "csf"))
