"""Simulated raters: they agree on consistent tissue and each includes or excludes every event.

With two or more raters every event is included by some and excluded by others, so each region
where the modalities disagree stays genuinely ambiguous in the ground truth. Both case generators
(the training phantom and :mod:`napari_entrust.heldout`) draw their raters here, so "raters
disagree exactly on the events" means the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rate(
    labels: np.ndarray, events: Sequence[tuple[np.ndarray, np.ndarray]], n_raters: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[list[int]]]:
    """(R, ...) label maps from the consensus ``labels`` and the events, and who included each event.

    ``events``: per event its mask and the labels a rater who includes it gives there.
    """
    raters = np.repeat(labels[None], n_raters, axis=0)
    included = []
    for mask, event_labels in events:
        include = rng.random(n_raters) < 0.5
        if n_raters >= 2 and (include.all() or not include.any()):
            include[int(rng.integers(n_raters))] ^= True
        included.append([int(r) for r in np.flatnonzero(include)])
        for r in included[-1]:
            raters[r][mask] = event_labels[mask]
    return raters, included
