"""The phantom's domain: tissue values, sequences, imaging and shape ranges, fixed or randomised.

``STANDARD`` is the one scanner and lesion family the sample case and the benchmark phantoms
use. :func:`randomised_domain` draws a new one per case for training (SynthSeg's lesson): tissue
relaxation times, sequence parameters and sequence types, noise, bias field, PSF, slice thickness,
ghosting, head size and lesion shapes vary well beyond one scanner, so a model cannot learn the
generator's look. Labels keep their meaning: oedema stays bright on T2 and FLAIR, enhancing
tissue takes up contrast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .mri_signal import HEALTHY, R1_GD, STANDARD_SEQUENCES, TISSUES, Sequence, Tissue

#: of each mixed domain's cases, the share on the standard protocol (the rest randomised)
MIXED_STANDARD_SHARES = {"mixed": 0.25, "half-mixed": 0.5}
DOMAINS = ("standard", "randomised", *MIXED_STANDARD_SHARES)
#: bumped when what ``randomised_domain`` draws changes, so cached training phantoms are regenerated
RANDOMISED_VERSION = 2
#: the least FLAIR and T2 contrast of oedema against the brighter of white and grey matter: as
#: subtle as real oedema gets and still labelled (the standard protocol's is 2.5 and 2.2)
OEDEMA_CONTRAST_MIN = {"flair": 1.15, "t2": 1.2}


@dataclass(frozen=True)
class Imaging:
    """One modality's acquisition after the signal equation."""

    #: Rician σ as a fraction of the brightest healthy tissue (WM on T1/T1ce, CSF on T2, GM on FLAIR:
    #: DESIGN.md says "of CSF for T2/FLAIR", but FLAIR nulls CSF)
    noise: float = 0.03
    bias: float = 0.1  #: bias-field amplitude (multiplicative, ±)
    psf: float = 0.42  #: Gaussian PSF σ on every axis, output voxels (FWHM ≈ one voxel)
    thick_axis: int = 2  #: the through-plane axis of a thick-slice acquisition
    thickness: float = 0.0  #: slice thickness in mm; 0 = acquired on the output grid
    ghost: float = 0.0  #: amplitude of a half-FOV ghost along the first in-plane axis


@dataclass(frozen=True)
class Shapes:
    """Ranges of the anatomy warp, the lesion and its disagreement events (mm unless noted)."""

    rotation_deg: float = 5.0
    scale: tuple[float, float] = (0.95, 1.05)  #: per axis
    head_scale: tuple[float, float] = (1.0, 1.0)  #: isotropic, on top of ``scale``
    shift: float = 3.0
    seed_depth: float = 24.0  #: the tumour seed at least this deep in the brain
    seed_wm: float = 0.7  #: ... in voxels with more white matter than this (0: any white matter at all)
    radius: tuple[float, float] = (9.0, 16.0)
    roughness: float = 0.25
    rim: tuple[float, float] = (2.5, 4.5)
    satellites: int = 0  #: extra star-shaped blobs beside the first (irregular or multifocal tumours)
    non_enhancing: bool = False  #: no enhancing rim at all
    oedema_steps: tuple[float, float] = (6.0, 18.0)
    flair_only_radius: tuple[float, float] = (4.0, 7.0)
    t1ce_focus_radius: tuple[float, float] = (3.0, 4.5)
    misregistered: tuple[str, ...] = ("t2", "flair")
    misregistration_mm: tuple[float, float] = (1.0, 2.0)


@dataclass(frozen=True)
class Domain:
    """Everything about a phantom that is not the case's own random geometry."""

    name: str = "standard"
    tissues: dict[str, Tissue] = field(default_factory=lambda: dict(TISSUES))
    sequences: dict[str, Sequence] = field(default_factory=lambda: dict(STANDARD_SEQUENCES))
    imaging: dict[str, Imaging] = field(default_factory=lambda: {m: Imaging() for m in STANDARD_SEQUENCES})
    shapes: Shapes = field(default_factory=Shapes)
    focus_gd: float = 0.5  #: mM of contrast agent in a T1ce-only focus
    misregistration_chance: float = 0.5

    def signal(self, tissue: str, modality: str, extra_gd: float = 0.0) -> float:
        """Noise-free signal of a pure tissue in ``modality`` under this domain's sequences."""
        sequence = self.sequences[modality]
        return sequence.signal(self.tissues[tissue], post_contrast=modality == "t1ce", extra_gd=extra_gd)

    def brightest_healthy(self, modality: str) -> float:
        return max(self.signal(t, modality) for t in HEALTHY)


STANDARD = Domain()


def domain_for(name: str, rng: np.random.Generator) -> Domain:
    """The named domain; ``randomised`` draws a new one from ``rng``, ``mixed`` and ``half-mixed`` draw
    the standard one for their share (:data:`MIXED_STANDARD_SHARES`) and a randomised one otherwise."""
    if name == "standard":
        return STANDARD
    if name == "randomised":
        return randomised_domain(rng)
    if name in MIXED_STANDARD_SHARES:  # randomised, with some cases on the sample's standard protocol
        return STANDARD if rng.random() < MIXED_STANDARD_SHARES[name] else randomised_domain(rng)
    raise ValueError(f"unknown phantom domain {name!r}; choose from {', '.join(DOMAINS)}")


def cache_tag(name: str) -> str:
    """What tells a domain's cached training phantoms apart (empty for the standard domain)."""
    return "" if name == "standard" else f"-{name}{RANDOMISED_VERSION}"


def randomised_domain(rng: np.random.Generator) -> Domain:
    """A scanner, protocol and lesion family drawn at random, far wider than any one site's."""
    tissues = _tissues(rng)
    t1 = _t1_weighted(rng)
    sequences = {
        "t1": t1,
        "t1ce": t1 if rng.random() < 0.6 else _t1_weighted(rng),
        "t2": Sequence("spin_echo", tr=rng.uniform(2500, 8000), te=rng.uniform(70, 140)),
        "flair": _flair(rng, tissues["csf"].t1),
    }
    tissues = _oedema_visible(tissues, sequences)
    imaging = {m: _imaging(rng) for m in sequences}
    shapes = Shapes(
        rotation_deg=10.0,
        scale=(0.96, 1.04),
        head_scale=(0.9, 1.1),
        shift=6.0,
        seed_depth=rng.uniform(12.0, 28.0),
        seed_wm=0.0 if rng.random() < 0.3 else 0.5,
        radius=(6.0, 20.0),
        roughness=rng.uniform(0.1, 0.4),
        rim=(1.5, 6.0),
        satellites=int(rng.choice([0, 0, 1, 2])),
        non_enhancing=bool(rng.random() < 0.1),
        oedema_steps=(2.0, 25.0),
        flair_only_radius=(2.0, 7.0),
        t1ce_focus_radius=(1.5, 4.5),
        misregistered=("t1", "t1ce", "t2", "flair"),
        misregistration_mm=(0.5, 3.0),
    )
    return Domain("randomised", tissues, sequences, imaging, shapes, rng.uniform(0.3, 0.9), 0.6)


def _tissues(rng: np.random.Generator) -> dict[str, Tissue]:
    """Relaxation times jittered per tissue, T1 lengthened for field strength; lesions vary more."""
    field_t1 = rng.uniform(0.9, 1.45)  # 1.5 T to 3 T and beyond
    field_t2 = rng.uniform(0.85, 1.05)
    out = {}
    for name, t in TISSUES.items():
        spread = 0.12 if name in HEALTHY else 0.22
        out[name] = replace(
            t,
            t1=t.t1 * field_t1 * rng.lognormal(0, spread),
            t2=t.t2 * field_t2 * rng.lognormal(0, spread),
            t2s=t.t2s * field_t2 * rng.lognormal(0, spread),
            pd=min(1.0, t.pd * rng.lognormal(0, 0.05)),
        )
    # what the labels mean must survive: oedema is T2-bright and T1-iso or dark, from as subtle as
    # real vasogenic oedema (T2 1.3× white matter's, 3 T's T1 1.5×) to the standard's conspicuous;
    # enhancing tissue takes up enough contrast to end with a T1 shorter than white matter's
    wm = out["wm"]
    out["oedema"] = replace(
        out["oedema"],
        t1=wm.t1 * rng.uniform(1.0, 1.8),
        t2=wm.t2 * np.exp(rng.uniform(np.log(1.3), np.log(3.2))),
        gd=rng.uniform(0.0, 0.05),
    )
    enhancing = out["enhancing"]
    t1_post = wm.t1 * rng.uniform(0.35, 0.8)
    out["enhancing"] = replace(enhancing, gd=max(0.0, 1000.0 / R1_GD * (1.0 / t1_post - 1.0 / enhancing.t1)))
    return out


def _oedema_visible(tissues: dict[str, Tissue], sequences: dict[str, Sequence]) -> dict[str, Tissue]:
    """Oedema's T2 lengthened until it is at least :data:`OEDEMA_CONTRAST_MIN` brighter than white
    and grey matter on FLAIR and T2 (a label no rater could draw would teach the model noise)."""
    oedema = tissues["oedema"]
    for _ in range(40):
        dim = [
            seq.signal(oedema) < least * max(seq.signal(tissues["wm"]), seq.signal(tissues["gm"]))
            for seq, least in ((sequences[m], OEDEMA_CONTRAST_MIN[m]) for m in ("flair", "t2"))
        ]
        if not any(dim):
            break
        oedema = replace(oedema, t2=oedema.t2 * 1.08)
    return {**tissues, "oedema": oedema}


def _t1_weighted(rng: np.random.Generator) -> Sequence:
    if rng.random() < 0.5:  # MPRAGE-like inversion-prepared gradient echo
        return Sequence("mprage", tr=rng.uniform(1800, 2600), te=rng.uniform(2, 5), ti=rng.uniform(700, 1100))
    return Sequence("spgr", tr=rng.uniform(7, 30), te=rng.uniform(2, 10), flip_deg=rng.uniform(10, 40))


def _flair(rng: np.random.Generator, csf_t1: float) -> Sequence:
    """Inversion recovery with its inversion time near (±10 %) the one that nulls this CSF."""
    tr = rng.uniform(6000, 11000)
    ti_null = csf_t1 * np.log(2.0 / (1.0 + np.exp(-tr / csf_t1)))
    return Sequence("flair", tr=tr, te=rng.uniform(80, 150), ti=ti_null * rng.uniform(0.9, 1.1))


def _imaging(rng: np.random.Generator) -> Imaging:
    thick = rng.random() < 0.5
    return Imaging(
        noise=rng.uniform(0.01, 0.07),
        bias=rng.uniform(0.0, 0.35),
        psf=rng.uniform(0.3, 1.0),
        thick_axis=int(rng.choice([0, 1, 2, 2, 2])),
        thickness=rng.uniform(2.0, 6.0) if thick else 0.0,
        ghost=rng.uniform(0.03, 0.12) if rng.random() < 0.15 else 0.0,
    )
