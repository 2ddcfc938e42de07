"""How faithful is a map? Deletion and insertion curves, off-target leakage, robustness (seed 003's protocol).

Deletion and insertion curves replace elements by, or restore them from, their healthy-tissue
value in order of attribution; the target score is rescaled to 1 for the clean input and 0 with
every element replaced, :data:`CURVE_POINTS` points, AUC by the trapezoid rule. Leakage is the
share of attribution mass farther than :data:`ON_TARGET_MM` from the target; robustness the
Spearman correlation between the map and the map of a noisy input.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.stats import spearmanr

from .crop import TargetCrop

CURVE_POINTS = 11
MIN_EFFECT = 0.02  #: score change (clean − all inputs at healthy tissue) below which maps say little
ON_TARGET_MM = 4.0  #: attribution this close to the target counts as on target (partial volume at 2 mm)


def _order(attribution: np.ndarray, where: np.ndarray, seed: int) -> np.ndarray:
    """Flat indices of the elements, most attributed first (ties in a seeded random order)."""
    idx = np.flatnonzero(where)
    tie = np.random.default_rng(seed).random(idx.size)
    return idx[np.lexsort((tie, -attribution.ravel()[idx]))]


def curves(crop: TargetCrop, attribution: np.ndarray, seed: int = 0) -> dict:
    """Deletion and insertion curves of the target score and their AUCs.

    Scores are rescaled so that the clean input is 1 and every element at its healthy-tissue value
    is 0 (deletion runs 1 → 0, insertion 0 → 1), which keeps AUCs comparable between regions whose
    probability is high and regions where it is near 0. ``informative`` is False when the box's
    inputs move the score by less than :data:`MIN_EFFECT`: then no map can say much.
    """
    order = _order(attribution, crop.elements, seed)
    fractions = np.linspace(0, 1, CURVE_POINTS)
    counts = np.round(fractions * order.size).astype(int)
    deleted, inserted = [crop.volume], []
    for n in counts:
        top = np.zeros(crop.volume.shape, bool)
        top.ravel()[order[:n]] = True
        if n:
            deleted.append(crop.with_baseline(top))
        inserted.append(crop.with_baseline(crop.elements & ~top))
    raw_deletion, raw_insertion = crop.scores(deleted), crop.scores(inserted)
    clean, base = float(raw_deletion[0]), float(raw_insertion[0])  # all inputs / none of them
    effect = clean - base
    scale = effect if abs(effect) > 1e-9 else float("nan")
    dele, ins = (raw_deletion - base) / scale, (raw_insertion - base) / scale
    return {
        "fractions": fractions.tolist(),
        "deletion": dele.tolist(),
        "insertion": ins.tolist(),
        "deletion_auc": float(np.trapezoid(dele, fractions)),
        "insertion_auc": float(np.trapezoid(ins, fractions)),
        "clean_score": clean,
        "baseline_score": base,
        "informative": bool(abs(effect) >= MIN_EFFECT),
    }


def leakage(attribution: np.ndarray, target: np.ndarray, spacing_mm: float) -> float:
    """Share of the positive attribution mass farther than :data:`ON_TARGET_MM` from the target."""
    steps = int(round(ON_TARGET_MM / spacing_mm))
    near = ndimage.binary_dilation(target, iterations=steps) if steps > 0 else target
    mass = np.clip(attribution, 0, None)
    total = float(mass.sum())
    return float(mass[:, ~near].sum() / total) if total > 0 else 0.0


def robustness(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Spearman correlation of two maps over the elements."""
    rho = spearmanr(a[where], b[where]).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def shares(attribution: np.ndarray, modalities) -> dict[str, float]:
    """Each modality's share of the positive attribution mass (sums to 1; even split when there is none)."""
    mass = np.clip(attribution, 0, None).reshape(len(modalities), -1).sum(1)
    total = float(mass.sum())
    return {m: (float(v) / total if total > 0 else 1 / len(modalities)) for m, v in zip(modalities, mass)}
