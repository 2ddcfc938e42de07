"""BraTS label conventions and the three evaluated regions WT, TC, ET.

Internally every label map uses the BraTS 2021 convention: 0 background, 1 necrotic/non-enhancing
core (NCR), 2 oedema (ED), 4 enhancing tumour (ET). Files in the BraTS 2023 (ET = 3) and MSD Task01
(1 ED, 2 NET, 3 ET) conventions are translated on read and back on write.
"""

from __future__ import annotations

import numpy as np

NCR, ED, ET = 1, 2, 4
REGIONS: tuple[str, ...] = ("WT", "TC", "ET")
REGION_LABELS: dict[str, tuple[int, ...]] = {"WT": (NCR, ED, ET), "TC": (NCR, ET), "ET": (ET,)}

#: file value -> internal value, per convention
CONVENTIONS: dict[str, dict[int, int]] = {
    "brats2021": {0: 0, 1: NCR, 2: ED, 4: ET},
    "brats2023": {0: 0, 1: NCR, 2: ED, 3: ET},
    "msd": {0: 0, 1: ED, 2: NCR, 3: ET},
}
LABEL_NAMES: dict[int, str] = {0: "background", NCR: "necrotic core", ED: "oedema", ET: "enhancing tumour"}
LABEL_ABBREVIATIONS: dict[int, str] = {NCR: "NCR", ED: "ED", ET: "ET"}
#: fixed display colours (the usual BraTS figure colours), so a label always looks the same
LABEL_COLOURS: dict[int, str] = {NCR: "#ff4040", ED: "#40d040", ET: "#ffe020"}
REGION_NAMES: dict[str, str] = {"WT": "whole tumour", "TC": "tumour core", "ET": "enhancing tumour"}


def guess_convention(values: set[int], layout: str) -> str:
    """Pick the convention of a label file from its values and the case layout (``msd`` or a BraTS year)."""
    if layout == "msd":
        return "msd"
    if 4 in values:
        return "brats2021"
    if 3 in values:
        return "brats2023"
    return layout if layout in CONVENTIONS else "brats2021"


def unexpected_values(values: set[int], convention: str) -> list[int]:
    """Values a label file holds that its convention does not define."""
    return sorted(v for v in values if v not in CONVENTIONS[convention])


def to_internal(labels: np.ndarray, convention: str) -> np.ndarray:
    """Translate a file's label values into the internal BraTS 2021 convention (uint8)."""
    lut = np.zeros(max(CONVENTIONS[convention]) + 1, dtype=np.uint8)
    for src, dst in CONVENTIONS[convention].items():
        lut[src] = dst
    return lut[labels.astype(np.intp)]


def from_internal(labels: np.ndarray, convention: str) -> np.ndarray:
    """Translate internal labels into the values a file in ``convention`` must hold (uint8)."""
    lut = np.zeros(ET + 1, dtype=np.uint8)
    for src, dst in CONVENTIONS[convention].items():
        lut[dst] = src
    labels = np.asarray(labels)
    out = labels.astype(np.uint8)
    # only the values that change, one equality test each: K hypotheses of a 1 mm case are 71 MB,
    # which a lookup through an index array would first widen to 570 MB
    for value in np.flatnonzero(lut != np.arange(lut.size)):
        out[labels == value] = lut[value]
    return out


def in_region(labels: np.ndarray, region: str) -> np.ndarray:
    """Boolean map of the voxels of an internal label map that belong to ``region`` (WT, TC or ET).

    One equality test per label value of the region: 4-20× faster than ``np.isin`` or a lookup table.
    """
    labels = np.asarray(labels)
    values = REGION_LABELS[region]
    out = labels == values[0]
    for v in values[1:]:
        out |= labels == v
    return out


def region_votes(samples: np.ndarray) -> np.ndarray:
    """(K, ...) label maps -> (3, ...) how many of the K maps put each voxel in WT, TC, ET.

    Counted once per label value and summed into the regions, which are unions of label values.
    """
    dtype = np.uint8 if samples.shape[0] < 256 else np.uint16
    counts = {v: np.add.reduce(samples == v, axis=0, dtype=dtype) for v in (NCR, ED, ET)}
    return np.stack([sum(counts[v] for v in REGION_LABELS[r]) for r in REGIONS])


def to_regions(labels: np.ndarray) -> np.ndarray:
    """Label map (internal convention) -> boolean region channels, shape ``(3, *labels.shape)`` for WT, TC, ET."""
    return np.stack([in_region(labels, r) for r in REGIONS])


def from_regions(regions: np.ndarray) -> np.ndarray:
    """Region channels (WT, TC, ET; bool or probabilities thresholded at 0.5) -> label map.

    The regions are nested (ET ⊂ TC ⊂ WT); a voxel gets ET if ET is set, else NCR if TC is set,
    else ED if WT is set, so an inconsistent prediction still gives a valid label map.
    """
    wt, tc, et = (np.asarray(r) > 0.5 if r.dtype != bool else r for r in regions)
    out = np.zeros(wt.shape, dtype=np.uint8)
    out[wt] = ED
    out[tc] = NCR
    out[et] = ET
    return out
