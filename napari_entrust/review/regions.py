"""The regions a reviewer looks at: connected high-uncertainty regions, ranked, and why they are uncertain.

Pure numpy (no Qt): the review widget shows :func:`find_uncertain_regions` as a table; ``why``
says which modalities drive a region and whether they disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import measure

from ..io.modalities import DISPLAY_NAMES

DEFAULT_THRESHOLD = 0.2  #: TrustMap above which a voxel counts as uncertain
MIN_REGION_VOXELS = 3


@dataclass
class UncertainRegion:
    """One connected high-uncertainty region."""

    number: int  #: 1-based, in ranking order
    bbox: tuple[slice, slice, slice]
    mask: np.ndarray  #: bool, shape of the bbox
    voxels: int
    size_ml: float
    mean_trust: float
    mass: float  #: Σ TrustMap over the region (what the table is ranked by)
    centre: tuple[float, float, float]  #: voxel coordinates of the centroid
    pattern: dict[str, float]  #: modality -> share of the evidence (sums to 1)
    conflict_ratio: float  #: mean ‖F_cf‖ here / median ‖F_cf‖ over the head

    def indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full-volume voxel indices of the region (for ``data_setitem``)."""
        local = np.nonzero(self.mask)
        return tuple(loc + s.start for loc, s in zip(local, self.bbox))

    def full_mask(self, shape) -> np.ndarray:
        out = np.zeros(shape, bool)
        out[self.bbox] = self.mask
        return out

    def grown_box(self, shape, margin: int) -> tuple[tuple[slice, slice, slice], np.ndarray]:
        """The region's box grown by ``margin`` voxels (within ``shape``), and the region's mask in it:
        an outline drawn in the tight box would be cut where the region touches the box."""
        box = tuple(slice(max(b.start - margin, 0), min(b.stop + margin, n)) for b, n in zip(self.bbox, shape))
        out = np.zeros([b.stop - b.start for b in box], bool)
        out[tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(self.bbox, box))] = self.mask
        return box, out

    @property
    def why(self) -> str:
        """Plain-language reason: which modalities drive it, and whether they disagree."""
        ranked = sorted(self.pattern.items(), key=lambda kv: -kv[1])
        even = 1.0 / max(len(ranked), 1)
        leaders = [f"{DISPLAY_NAMES.get(m, m)} {share:.0%}" for m, share in ranked if share >= 1.25 * even]
        text = ("driven by " + ", ".join(leaders)) if leaders else "no single modality dominates"
        if self.conflict_ratio >= 1.5:
            text += f"; modalities disagree (conflict ×{self.conflict_ratio:.1f})"
        return text


def modality_pattern(
    mask: np.ndarray,
    weights: dict[str, np.ndarray],
    specific: dict[str, np.ndarray],
    specific_reference: dict[str, float],
) -> dict[str, float]:
    """Each modality's share of the evidence in ``mask``: fusion weight × specific-feature activity.

    Activity is the mean ‖F_u,m‖ in the region relative to its median over the head, so a modality
    counts when the model both relies on it here and sees something modality-specific here.
    """
    raw = {}
    for mod, w in weights.items():
        activity = float(specific[mod][mask].mean()) / max(specific_reference.get(mod, 1.0), 1e-6)
        raw[mod] = float(w[mask].mean()) * activity
    total = sum(raw.values()) or 1.0
    return {mod: v / total for mod, v in raw.items()}


def find_uncertain_regions(
    trustmap: np.ndarray,
    *,
    voxel_ml: float,
    weights: dict[str, np.ndarray],
    specific: dict[str, np.ndarray],
    conflict: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    min_voxels: int = MIN_REGION_VOXELS,
    max_regions: int = 200,
) -> list[UncertainRegion]:
    """Connected regions (26-connectivity) of TrustMap > ``threshold``, ranked by uncertainty mass."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    nonzero = conflict > 0
    cf_median = float(np.median(conflict[nonzero])) if nonzero.any() else 1.0
    reference = {m: float(np.median(v[v > 0])) if (v > 0).any() else 1.0 for m, v in specific.items()}
    labelled, n = measure.label(trustmap > threshold, connectivity=3, return_num=True)
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    counts = ndimage.sum_labels(np.ones_like(trustmap, dtype=np.float32), labelled, index)
    masses = ndimage.sum_labels(trustmap, labelled, index)
    boxes = ndimage.find_objects(labelled)
    order = [i for i in np.argsort(-masses, kind="stable") if counts[i] >= min_voxels][:max_regions]
    regions = []
    for rank, i in enumerate(order, start=1):
        box = boxes[i]
        mask = labelled[box] == i + 1
        local = {m: v[box] for m, v in weights.items()}
        spec = {m: v[box] for m, v in specific.items()}
        centre = tuple(float(c + s.start) for c, s in zip(ndimage.center_of_mass(mask), box))
        regions.append(
            UncertainRegion(
                number=rank,
                bbox=box,
                mask=mask,
                voxels=int(counts[i]),
                size_ml=float(counts[i] * voxel_ml),
                mean_trust=float(masses[i] / counts[i]),
                mass=float(masses[i]),
                centre=centre,
                pattern=modality_pattern(mask, local, spec, reference),
                conflict_ratio=float(conflict[box][mask].mean() / max(cf_median, 1e-6)),
            )
        )
    return regions
