"""Per-modality intensity normalisation for the model (never applied to saved images).

MR intensities have no absolute scale, so each modality is mapped robustly: its ``lower`` and
``upper`` percentiles *inside the head* go to 0 and 1. Background stays 0, so skull-stripped
BraTS data and unstripped data are treated alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io.case import Case


@dataclass(frozen=True)
class IntensityStats:
    """What normalisation used for one modality; stored with models so inputs can be compared later."""

    low: float
    high: float
    head_fraction: float


def head_mask(images: dict[str, np.ndarray], threshold: float = 0.05) -> np.ndarray:
    """Voxels inside the head: any modality above ``threshold`` × its 99th percentile, holes filled.

    Works for skull-stripped data (zero background) and for raw scans with a noisy background.
    """
    mask = np.zeros(next(iter(images.values())).shape, dtype=bool)
    for data in images.values():
        positive = data[data > 0]
        if positive.size == 0:
            continue
        mask |= data > threshold * float(np.percentile(positive, 99))
    mask = ndimage.binary_opening(mask, iterations=1)
    labelled, n = ndimage.label(mask)
    if n > 1:  # keep the largest connected component (the head), drop background specks
        sizes = ndimage.sum_labels(mask, labelled, index=np.arange(1, n + 1))
        mask = labelled == (1 + int(np.argmax(sizes)))
    return fill_holes(mask)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes`` (face-connected background), 3× faster on a head volume:
    background components that touch the array's border stay background, all others are filled."""
    background, _ = ndimage.label(~mask)
    faces = [np.moveaxis(background, axis, 0)[end].ravel() for axis in range(background.ndim) for end in (0, -1)]
    outside = np.zeros(int(background.max()) + 1, dtype=bool)
    outside[np.concatenate(faces)] = True
    outside[0] = False  # label 0: the mask itself
    return ~outside[background]


def normalize_volume(
    data: np.ndarray, mask: np.ndarray, lower: float = 0.5, upper: float = 99.5
) -> tuple[np.ndarray, IntensityStats]:
    """Map the ``lower``/``upper`` percentiles inside ``mask`` to 0/1 (float32, 0 outside the mask)."""
    inside = data[mask]
    if inside.size == 0:
        raise ValueError("the head mask is empty; nothing to normalise")
    low, high = (float(v) for v in np.percentile(inside, [lower, upper]))
    scale = high - low if high > low else 1.0
    out = np.zeros(data.shape, dtype=np.float32)
    out[mask] = (inside - low) / scale
    return out, IntensityStats(low, high, float(mask.mean()))


def normalize_case(
    case: Case, lower: float = 0.5, upper: float = 99.5
) -> tuple[dict[str, np.ndarray], dict[str, IntensityStats]]:
    """Normalised copies of every modality of ``case`` and the statistics used."""
    mask = head_mask(case.images)
    if not mask.any():
        raise InputError(
            case.name, "no head found: every modality is zero or nearly so, or the volume is too small to hold one"
        )
    out, stats = {}, {}
    for mod, data in case.images.items():
        out[mod], stats[mod] = normalize_volume(data, mask, lower, upper)
    return out, stats
