"""Dual-evidence fusion: the intervention map, refined by the gradient where the gradient can be trusted.

F = (1 − w/2)·î + (w/2)·ĝ, w = agreement × gradient stability, agreement = 1 − |rank ĝ − rank î|
(percentile ranks over the elements): where the gradient is stable and agrees with the
intervention, F averages the two (and the gradient orders the voxels inside a block, where î is
flat); where it is unstable or disagrees, F is the intervention evidence alone.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def percentile_rank(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Each element's rank among ``where`` scaled to (0, 1] (ties share their mean rank); 0 elsewhere."""
    out = np.zeros(values.shape, np.float64)
    out[where] = rankdata(values[where]) / max(int(where.sum()), 1)
    return out


def fuse(gradient: np.ndarray, intervention: np.ndarray, stability: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Dual-evidence fusion: F = (1 − w/2)·î + (w/2)·ĝ with w = (1 − |rank ĝ − rank î|) · stability.

    ĝ, î: the positive parts of the two maps, each scaled to unit mass over ``where``. Agreement
    compares percentile ranks (scale-free). F keeps attribution units, is 0 where neither source
    sees evidence, and equals the intervention evidence where the gradient is unstable or disagrees.
    """

    def unit(a: np.ndarray) -> np.ndarray:
        a = np.where(where, np.clip(a, 0, None), 0.0)
        total = a.sum()
        return a / total if total > 0 else a

    g, i = unit(gradient), unit(intervention)
    w = (1 - np.abs(percentile_rank(g, where) - percentile_rank(i, where))) * stability
    return np.where(where, (1 - w / 2) * i + (w / 2) * g, 0.0).astype(np.float32)
