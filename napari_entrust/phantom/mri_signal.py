"""MR signal equations and tissue parameters used to render the phantom's four contrasts.

Tissue values at 1.5 T follow BrainWeb (Kwan 1999) as tabulated in DESIGN.md §4. A voxel's
signal is the fraction-weighted sum of its tissues' signals (partial volume). A :class:`Sequence`
names the equation and its parameters, so a randomised domain (:mod:`.domain`) can change them.
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


def mprage(t1, t2s, pd, tr=2300.0, te=3.0, ti=900.0):
    """Inversion-prepared gradient echo (MPRAGE-like): |PD(1 − 2e^(−TI/T1) + e^(−TR/T1))|e^(−TE/T2*)."""
    return np.abs(pd * (1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1))) * np.exp(-te / t2s)


def t1_with_gadolinium(t1: float, gd_millimolar: float) -> float:
    """T1 (ms) shortened by a gadolinium concentration (mM)."""
    return 1.0 / (1.0 / t1 + R1_GD * gd_millimolar / 1000.0)


@dataclass(frozen=True)
class Sequence:
    """A pulse sequence: which signal equation (``kind``) and its parameters (ms, degrees)."""

    kind: str  #: spgr | mprage | spin_echo | flair
    tr: float
    te: float
    flip_deg: float = 30.0
    ti: float = 0.0

    def signal(self, tissue: Tissue, post_contrast: bool = False, extra_gd: float = 0.0) -> float:
        """Noise-free signal of a pure tissue; ``post_contrast`` shortens T1 by its gadolinium."""
        t1 = t1_with_gadolinium(tissue.t1, tissue.gd + extra_gd) if post_contrast else tissue.t1
        if self.kind == "spgr":
            return float(spoiled_gradient_echo(t1, tissue.t2s, tissue.pd, self.tr, self.te, self.flip_deg))
        if self.kind == "mprage":
            return float(mprage(t1, tissue.t2s, tissue.pd, self.tr, self.te, self.ti))
        if self.kind == "spin_echo":
            return float(spin_echo(t1, tissue.t2, tissue.pd, self.tr, self.te))
        if self.kind == "flair":
            return float(flair(t1, tissue.t2, tissue.pd, self.tr, self.te, self.ti))
        raise ValueError(f"unknown sequence kind {self.kind!r}")


#: the protocol of DESIGN.md §4 (T1ce is the T1 sequence after contrast)
STANDARD_SEQUENCES: dict[str, Sequence] = {
    "t1": Sequence("spgr", tr=18.0, te=10.0, flip_deg=30.0),
    "t1ce": Sequence("spgr", tr=18.0, te=10.0, flip_deg=30.0),
    "t2": Sequence("spin_echo", tr=3300.0, te=120.0),
    "flair": Sequence("flair", tr=9000.0, te=120.0, ti=1705.0),
}


def signal(tissue: Tissue, modality: str, extra_gd: float = 0.0) -> float:
    """Noise-free signal of a pure tissue in ``modality`` (t1, t1ce, t2, flair), standard protocol.

    ``extra_gd`` adds contrast agent (mM) seen on T1ce only, e.g. an enhancing vessel.
    """
    if modality not in STANDARD_SEQUENCES:
        raise ValueError(f"unknown modality {modality!r}")
    return STANDARD_SEQUENCES[modality].signal(tissue, post_contrast=modality == "t1ce", extra_gd=extra_gd)


def signal_table(modalities=("t1", "t1ce", "t2", "flair")) -> dict[str, dict[str, float]]:
    """``table[modality][tissue]`` for every tissue in :data:`TISSUES`."""
    return {m: {name: signal(t, m) for name, t in TISSUES.items()} for m in modalities}
