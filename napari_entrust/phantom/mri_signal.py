"""MR signal equations and tissue parameters used to render the phantom's four contrasts.

Tissue values at 1.5 T follow BrainWeb (Kwan 1999) as tabulated in DESIGN.md §4. A voxel's
signal is the fraction-weighted sum of its tissues' signals (partial volume).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Gadolinium relaxivity r1 in s⁻¹·mM⁻¹ (1/T1_post = 1/T1 + r1·C).
R1_GD = 4.0


@dataclass(frozen=True)
class Tissue:
    """Relaxation times, proton density and contrast uptake of one tissue."""

    t1: float  #: ms, before contrast
    t2: float  #: ms
    t2s: float  #: T2* in ms
    pd: float  #: proton density, relative
    gd: float = 0.0  #: gadolinium concentration in mM after injection (seen on T1ce only)


TISSUES: dict[str, Tissue] = {
    "csf": Tissue(2569, 329, 58, 1.00),
    "gm": Tissue(833, 83, 69, 0.86),
    "wm": Tissue(500, 70, 61, 0.77),
    # T1-iso with white matter; a 0.02 mM leak gives the 4 % rise on T1ce DESIGN.md expects.
    "oedema": Tissue(644, 180, 150, 0.86, gd=0.02),
    "enhancing": Tissue(900, 110, 90, 0.85, gd=0.5),
    "necrosis": Tissue(2000, 250, 200, 0.95),
}
HEALTHY = ("csf", "gm", "wm")
LESION = ("necrosis", "enhancing", "oedema")


def spoiled_gradient_echo(t1, t2s, pd, tr=18.0, te=10.0, flip_deg=30.0):
    """T1-weighted SPGR: PD·sinα(1−E1)/(1−cosα·E1)·e^(−TE/T2*)."""
    a = np.deg2rad(flip_deg)
    e1 = np.exp(-tr / t1)
    return pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1) * np.exp(-te / t2s)


def spin_echo(t1, t2, pd, tr=3300.0, te=120.0):
    """T2-weighted spin echo: PD(1−e^(−TR/T1))e^(−TE/T2)."""
    return pd * (1 - np.exp(-tr / t1)) * np.exp(-te / t2)


def flair(t1, t2, pd, tr=9000.0, te=120.0, ti=1705.0):
    """Inversion recovery nulling CSF: |PD(1 − 2e^(−TI/T1) + e^(−TR/T1))|e^(−TE/T2)."""
    return np.abs(pd * (1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1))) * np.exp(-te / t2)


def t1_with_gadolinium(t1: float, gd_millimolar: float) -> float:
    """T1 (ms) shortened by a gadolinium concentration (mM)."""
    return 1.0 / (1.0 / t1 + R1_GD * gd_millimolar / 1000.0)


def signal(tissue: Tissue, modality: str, extra_gd: float = 0.0) -> float:
    """Noise-free signal of a pure tissue in ``modality`` (t1, t1ce, t2, flair).

    ``extra_gd`` adds contrast agent (mM) seen on T1ce only, e.g. an enhancing vessel.
    """
    if modality == "t1":
        return float(spoiled_gradient_echo(tissue.t1, tissue.t2s, tissue.pd))
    if modality == "t1ce":
        return float(spoiled_gradient_echo(t1_with_gadolinium(tissue.t1, tissue.gd + extra_gd), tissue.t2s, tissue.pd))
    if modality == "t2":
        return float(spin_echo(tissue.t1, tissue.t2, tissue.pd))
    if modality == "flair":
        return float(flair(tissue.t1, tissue.t2, tissue.pd))
    raise ValueError(f"unknown modality {modality!r}")


def signal_table(modalities=("t1", "t1ce", "t2", "flair")) -> dict[str, dict[str, float]]:
    """``table[modality][tissue]`` for every tissue in :data:`TISSUES`."""
    return {m: {name: signal(t, m) for name, t in TISSUES.items()} for m in modalities}


def noise_sigma(modality: str) -> float:
    """Rician noise σ: 3 % of the brightest healthy tissue (WM on T1/T1ce, CSF on T2, GM on FLAIR).

    DESIGN.md says "of CSF for T2/FLAIR"; FLAIR nulls CSF, so the brightest healthy tissue is used.
    """
    return 0.03 * max(signal(TISSUES[t], modality) for t in HEALTHY)
