"""Back to the case grid: the hypotheses as label maps, their majority vote, the TrustMap and volumes.

The user's fixed voxels come back exactly and certain. Volumes are counted per hypothesis, so
the summary can say how much the whole tumour's volume varies between plausible masks.
"""

from __future__ import annotations

import numpy as np

from ..io.case import Case
from ..io.labels import REGION_LABELS, REGIONS, from_regions, region_votes, to_regions
from ..model.trustmap import trustmap
from .encoding import Encoding
from .hypotheses import DrawnHypotheses
from .prediction import Prediction
from .slices import from_model_grid

Box = tuple[slice, slice, slice]


def _hypotheses_on_case_grid(regions: np.ndarray, grid, shape, boxes: list[Box]) -> tuple[np.ndarray, tuple]:
    """(K, 3, *grid) region channels -> (K, *shape) label maps, and where they can be non-zero."""
    k = regions.shape[0]
    drawn: tuple[slice, ...] = (slice(None),)  # where hypotheses can be non-zero (before fixed voxels)
    if tuple(grid) != tuple(shape):  # one hypothesis at a time, so a 1 mm case never holds K × 3 float volumes
        return np.stack(
            [from_regions(from_model_grid(regions[j].astype(np.float32), grid, shape)) for j in range(k)]
        ), drawn
    if boxes:  # hypotheses are drawn only inside the ROI boxes: their union
        drawn += tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3))
    labels = np.zeros((k, *shape), np.uint8)
    labels[drawn] = from_regions(regions[(slice(None), slice(None), *drawn[1:])].swapaxes(0, 1))
    return labels, drawn


def hypothesis_volumes_ml(counted: np.ndarray, voxel_ml: float) -> dict[str, np.ndarray]:
    """Region volumes (mL) of each of the (K, ...) label maps."""
    counts = np.stack([np.bincount(s.ravel(), minlength=5) for s in counted])  # (K, label values)
    return {r: counts[:, list(REGION_LABELS[r])].sum(1) * voxel_ml for r in REGIONS}


def assemble(
    case: Case,
    grid,
    enc: Encoding,
    drawn: DrawnHypotheses,
    boxes: list[Box],
    modalities,
    *,
    fixed: np.ndarray | None = None,
    fixed_labels: np.ndarray | None = None,
) -> tuple[Prediction, dict[str, np.ndarray]]:
    """Every output on the case grid, and the region volumes of each hypothesis (mL)."""
    shape, k = case.shape, drawn.regions.shape[0]

    def back(a: np.ndarray) -> np.ndarray:
        return from_model_grid(a, grid, shape)

    prob = back(drawn.prob)
    samples, where = _hypotheses_on_case_grid(drawn.regions, grid, shape, boxes)
    if fixed is not None:  # the user's decisions come back exactly, and certain
        samples[:, fixed] = fixed_labels[fixed]
        prob[:, fixed] = to_regions(fixed_labels[fixed])
    # the mask is the hypotheses' majority vote per region; prob (calibrated) feeds the TrustMap
    mask = from_regions(region_votes(samples) > k / 2)
    trust = trustmap(prob).astype(np.float32)
    counted = samples if fixed is not None else samples[where]  # fixed voxels may lie anywhere
    volumes = hypothesis_volumes_ml(counted, case.grid.voxel_volume_ml)
    statistics = {name: back(v) for name, v in drawn.statistics.items()}
    if fixed is not None:
        for v in statistics.values():
            v[fixed] = 0.0
    pred = Prediction(
        mask=mask,
        prob=prob.astype(np.float32),
        samples=samples,
        trustmap=trust,
        **statistics,
        consensus=back(enc.consensus),
        conflict=back(enc.conflict),
        specific={mod: back(enc.specific[i]) for i, mod in enumerate(modalities)},
        weights={mod: back(enc.weights[i]) for i, mod in enumerate(modalities)},
    )
    return pred, volumes
