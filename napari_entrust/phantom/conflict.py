"""The regions where the modalities disagree, and raters who each include or exclude them.

Placed at 1 mm by :func:`.lesion.place_events`; here they become footprints on the output grid
(FLAIR-only, T1ce-only, and a misregistered T2 or FLAIR), and the raters are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..io.labels import ED, ET
from .domain import STANDARD, Shapes
from .mri_signal import LESION
from .raters import rate as rate_events
from .render import labels_from_fractions


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
class Footprint:
    """A conflict event with its voxels and the labels raters give there when they include it."""

    event: ConflictEvent
    mask: np.ndarray
    labels: np.ndarray


def union(events: list[Footprint], like: np.ndarray) -> np.ndarray:
    """All events' voxels (an empty mask like ``like`` without events)."""
    return np.logical_or.reduce([e.mask for e in events]) if events else np.zeros_like(like)


def _volume_ml(mask: np.ndarray, affine: np.ndarray) -> float:
    return float(mask.sum()) * abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0


def conflict_events(frac, labels, brain, affine) -> list[Footprint]:
    """The FLAIR-only and T1ce-only regions, where at least half of a voxel is the event."""
    out: list[Footprint] = []
    taken = labels > 0
    for kind, modality, label in (("flair_only", "flair", ED), ("t1ce_focus", "t1ce", ET)):
        mask = (frac[kind] >= 0.5) & ~taken & brain
        if mask.any():
            taken |= mask
            event = ConflictEvent(
                kind, modality, label, centre_mm(mask, affine), _volume_ml(mask, affine), detail=_EVENT_DETAIL[kind]
            )
            out.append(Footprint(event, mask, np.where(mask, label, 0).astype(np.uint8)))
    return out


def misregister(
    clean, full, frac, labels, brain, affine, spacing, rng, taken, shapes: Shapes = STANDARD.shapes
) -> Footprint | None:
    """Shift one modality (T2 or FLAIR: 1–2 mm by default); the band where its lesion border
    differs becomes a conflict."""
    modality = shapes.misregistered[int(rng.integers(len(shapes.misregistered)))]
    shift = np.zeros(3)
    shift[int(rng.integers(3))] = rng.choice([-1.0, 1.0]) * rng.uniform(*shapes.misregistration_mm) / spacing
    for images in (clean, full):
        images[modality] = ndimage.shift(images[modality], shift, order=1, mode="nearest")
    shifted_labels = labels_from_fractions({k: ndimage.shift(frac[k], shift, order=1, mode="constant") for k in LESION})
    band = ((shifted_labels > 0) != (labels > 0)) & brain & ~taken
    if not band.any():
        return None
    event = ConflictEvent(
        "misregistration",
        modality,
        None,
        centre_mm(band, affine),
        _volume_ml(band, affine),
        detail=f"{modality} shifted by {np.round(shift * spacing, 2).tolist()} mm",
    )
    return Footprint(event, band, np.where(band, shifted_labels, labels).astype(np.uint8))


def rate(labels, events: list[Footprint], n_raters: int, rng) -> np.ndarray:
    """Raters (:func:`.raters.rate`) for the phantom's events; each event learns who included it."""
    raters, included = rate_events(labels, [(fp.mask, fp.labels) for fp in events], n_raters, rng)
    for fp, who in zip(events, included):
        fp.event.included_by = who
    return raters


_EVENT_DETAIL = {
    "flair_only": "FLAIR hyperintensity next to the lesion, normal on T1/T1ce/T2: infiltration or artefact?",
    "t1ce_focus": "enhancing focus on T1ce only, no T2/FLAIR signal: vessel or tumour?",
}


def centre_mm(mask: np.ndarray, affine: np.ndarray) -> list[float]:
    """The centre of mass of a mask in scanner mm, to 0.1 mm."""
    return [round(float(v), 1) for v in nib.affines.apply_affine(affine, ndimage.center_of_mass(mask))]
