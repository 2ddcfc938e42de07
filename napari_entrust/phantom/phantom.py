"""Brain-tumour phantom with known inter-modal conflict (DESIGN.md §4).

Real anatomy (MNI ICBM152 2009a, :mod:`.anatomy`), a lesion with necrosis, enhancing rim and
oedema (:mod:`.lesion`), the four MR contrasts rendered from tissue fractions with the signal
equations (:mod:`.mri_signal`, :mod:`.render`), and, on purpose, regions where the modalities
disagree so that the right label is genuinely uncertain (:mod:`.conflict`):

* ``flair_only``: FLAIR hyperintensity next to the lesion, normal on T1, T1ce and T2;
* ``t1ce_focus``: a small enhancing focus on T1ce without T2/FLAIR signal (vessel or tumour?);
* ``misregistration`` (optional): T2 or FLAIR shifted by 1–2 mm (1–2 native voxels), so borders disagree.

Raters agree on consistent tissue and each includes or excludes every conflict region at random.
Geometry is built at 1 mm and block-averaged to the output spacing, which is exact partial volume.
The ``randomised`` domain (:mod:`.domain`) draws tissue values, sequences, imaging and shape ranges
per case, for training; ``standard`` is the one protocol of DESIGN.md §4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.case import Case
from ..progress import Steps, run_to_end
from .anatomy import load_mni_anatomy
from .conflict import ConflictEvent, conflict_events, misregister, rate, union
from .domain import domain_for
from .lesion import make_lesion, place_events, warp_healthy
from .render import imaging_chain, labels_from_fractions, pool_fractions, render_contrasts

GENERATOR_VERSION = 1


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
    event_masks: dict[str, np.ndarray] = field(default_factory=dict)  #: kind -> bool mask, per kind of event
    domain: str = "standard"  #: standard | randomised (:mod:`.domain`)

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    def to_case(self) -> Case:
        return Case.from_arrays(self.images, self.affine, name=self.name, labels=self.labels, layout="phantom")


def phantom_name(seed: int, domain: str = "standard") -> str:
    """The case name of the phantom of ``seed`` in ``domain`` (known before it is generated)."""
    return f"phantom-{seed:05d}" if domain == "standard" else f"phantom-{domain}-{seed:05d}"


def make_phantom(
    seed: int = 0, spacing: int = 2, n_raters: int = 4, misregistration: bool | None = None, domain: str = "standard"
) -> Phantom:
    """Generate one deterministic phantom case (:func:`generate_phantom` without progress)."""
    return run_to_end(generate_phantom(seed, spacing, n_raters, misregistration, domain))


def generate_phantom(
    seed: int = 0,
    spacing: int = 2,
    n_raters: int = 4,
    misregistration: bool | None = None,
    domain: str = "standard",
) -> Steps[Phantom]:
    """Generate one deterministic phantom case; yields progress.

    ``spacing``: output voxel size in whole mm (1 = native MNI grid, 2 = fast).
    ``misregistration``: shift one modality (standard: T2 or FLAIR by 1–2 mm); None lets the seed
    decide (half the cases; 60 % in the randomised domain).
    ``domain``: ``standard`` or ``randomised`` (a new scanner and lesion family per seed).
    """
    if int(spacing) != spacing or spacing < 1:
        raise ValueError(f"spacing must be a whole number of mm >= 1 (1 = native, 2 = fast), got {spacing}")
    if n_raters < 1:
        raise ValueError(f"n_raters must be >= 1, got {n_raters}")
    spacing = int(spacing)
    # one generator per stage, so the lesion and raters do not depend on the spacing's array sizes
    rng, imaging_rng, rater_rng, domain_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, GENERATOR_VERSION]).spawn(4)
    )
    dom = domain_for(domain, domain_rng)
    if misregistration is None:
        misregistration = bool(rng.random() < dom.misregistration_chance)

    yield 0.0, "loading MNI anatomy"
    anat = load_mni_anatomy()
    yield 0.1, "varying the anatomy"
    healthy = warp_healthy(anat, rng, spacing, dom.shapes)
    yield 0.35, "growing the lesion"
    lesion = make_lesion(healthy, rng, dom.shapes)
    yield 0.55, "placing conflict regions"
    events_1mm = place_events(healthy, lesion, rng, dom.shapes)
    yield 0.65, f"pooling to {spacing} mm"
    frac, affine, brain = pool_fractions(healthy, lesion, events_1mm, anat.affine, spacing)
    labels = labels_from_fractions(frac)
    yield 0.75, "rendering T1, T1ce, T2, FLAIR"
    clean, full = render_contrasts(frac, dom)
    events = conflict_events(frac, labels, brain, affine)
    if misregistration:
        event = misregister(
            clean, full, frac, labels, brain, affine, spacing, rng, taken=union(events, brain), shapes=dom.shapes
        )
        if event is not None:
            events.append(event)
    yield 0.85, "imaging chain: PSF, bias field, Rician noise"
    images, visibility = imaging_chain(clean, full, brain, imaging_rng, dom, spacing)
    yield 0.95, "raters"
    raters = rate(labels, events, n_raters, rater_rng)
    yield 1.0, "done"
    return Phantom(
        phantom_name(seed, domain),
        seed,
        spacing,
        affine,
        images,
        labels,
        visibility,
        union(events, brain),
        raters,
        [e.event for e in events],
        frac,
        brain,
        {e.event.kind: e.mask for e in events},
        domain,
    )
