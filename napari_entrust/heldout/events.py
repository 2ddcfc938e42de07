"""Disagreement events of other sizes than the phantom's, and raters who disagree exactly there.

- ``flair_only``: a FLAIR hyperintensity 2–10 mm across touching the oedema, normal elsewhere;
- ``t1ce_focus``: an enhancing focus 3–8 mm across (mostly 3–5) a few mm from the lesion, on T1ce only;
- ``misregistration``: any one modality shifted by 0.5–3 mm in any direction; where its lesion
  border then disagrees with the others is the event.

Raters are drawn as for the training phantom (:mod:`napari_entrust.phantom.raters`): the one piece
the two generators share, so that "raters disagree exactly on the events" means the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..io.labels import ED, ET, NCR
from ..io.modalities import MODALITIES
from .lesions import Tumour

KINDS = ("flair_only", "t1ce_focus", "misregistration")


@dataclass
class Event:
    """One region where the modalities disagree, and what raters who include it label there."""

    kind: str
    modality: str  #: the modality that sees it, or that is shifted
    mask: np.ndarray  #: bool, case grid
    labels: np.ndarray  #: uint8 labels raters who include it give inside ``mask``
    detail: dict = field(default_factory=dict)


def labels_of(tumour_masks: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Internal labels from (necrosis, enhancing, oedema) masks."""
    necrosis, enhancing, oedema = tumour_masks
    out = np.zeros(necrosis.shape, np.uint8)
    out[oedema] = ED
    out[necrosis] = NCR
    out[enhancing] = ET
    return out


def _sphere_near(rng: np.random.Generator, ring: np.ndarray, free: np.ndarray, diameter: float) -> np.ndarray:
    """A ball of ``diameter`` mm centred on a random voxel of ``ring``, inside ``free``."""
    centres = np.argwhere(ring)
    if len(centres) == 0:
        return np.zeros(free.shape, bool)
    c = centres[int(rng.integers(len(centres)))]
    r = diameter / 2
    box = tuple(slice(max(int(v - r - 1), 0), int(v + r + 2)) for v in c)
    grid = np.indices(tuple(b.stop - b.start for b in box), dtype=np.float32)
    local = ((grid - (c - np.array([b.start for b in box]))[:, None, None, None]) ** 2).sum(0) <= r * r
    out = np.zeros(free.shape, bool)
    out[box] = local
    return out & free


def flair_only(rng: np.random.Generator, tumour: Tumour, brain: np.ndarray) -> Event:
    """A FLAIR-only hyperintensity touching the oedema (or the core, without oedema)."""
    lesion = tumour.any
    diameter = rng.uniform(2.0, 10.0)
    shell = ndimage.binary_dilation(lesion, iterations=max(1, int(diameter / 2))) & ~lesion & brain
    mask = _sphere_near(rng, shell, brain & ~lesion, diameter)
    return Event(
        "flair_only", "flair", mask, np.where(mask, ED, 0).astype(np.uint8), {"diameter_mm": round(float(diameter), 2)}
    )


def t1ce_focus(rng: np.random.Generator, tumour: Tumour, brain: np.ndarray, taken: np.ndarray) -> Event:
    """A small enhancing focus on T1ce only, 3–12 mm outside the lesion."""
    lesion = tumour.any
    diameter = rng.uniform(3.0, 5.0) if rng.random() < 0.7 else rng.uniform(5.0, 8.0)
    distance = ndimage.distance_transform_edt(~lesion)
    ring = (distance >= 3 + diameter / 2) & (distance <= 12) & brain & ~taken
    mask = _sphere_near(rng, ring, brain & ~lesion & ~taken, diameter)
    return Event(
        "t1ce_focus", "t1ce", mask, np.where(mask, ET, 0).astype(np.uint8), {"diameter_mm": round(float(diameter), 2)}
    )


def misregistration(rng: np.random.Generator, tumour: Tumour, brain: np.ndarray, taken: np.ndarray) -> Event:
    """One modality shifted by 0.5–3 mm: the band where the labels it decides then disagree.

    Raters take the whole-tumour extent from FLAIR and T2 and the core (necrosis, enhancement) from
    T1ce and T1, so a shifted FLAIR or T2 moves the oedema's border and a shifted T1ce or T1 the core's.
    """
    modality = MODALITIES[int(rng.integers(len(MODALITIES)))]
    direction = rng.normal(size=3)
    shift = direction / np.linalg.norm(direction) * rng.uniform(0.5, 3.0)

    def moved(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(mask.shape, bool)
        out[tumour.box] = ndimage.shift(mask[tumour.box].astype(np.float32), shift, order=1, mode="constant") >= 0.5
        return out

    labels = labels_of((tumour.necrosis, tumour.enhancing, tumour.oedema))
    if modality in ("flair", "t2"):
        whole = moved(tumour.any) | tumour.core
        shifted = labels_of((tumour.necrosis, tumour.enhancing, whole & ~tumour.core))
    else:
        necrosis, enhancing = moved(tumour.necrosis), moved(tumour.enhancing)
        core = necrosis | enhancing
        shifted = labels_of((necrosis, enhancing & ~necrosis, (tumour.any | core) & ~core))
    band = (shifted != labels) & brain & ~taken
    return Event(
        "misregistration",
        modality,
        band,
        np.where(band, shifted, labels).astype(np.uint8),
        {"shift_mm": np.round(shift, 2).tolist()},
    )
