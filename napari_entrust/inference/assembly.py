"""Back to the case grid: the hypotheses as label maps, their majority vote, the TrustMap and volumes.

The user's fixed voxels come back exactly and certain; the mask leaves out its parts that hold no
tumour core (:mod:`.coreless_parts`). Volumes are counted per hypothesis, so
the summary can say how much the whole tumour's volume varies between plausible masks.
"""

from __future__ import annotations

import numpy as np

from ..io.case import Case
from ..io.labels import REGION_LABELS, REGIONS, from_regions, region_votes, to_regions
from ..model.trustmap import trustmap
from .coreless_parts import drop_coreless_parts
from .encoding import Encoding
from .hypotheses import DrawnHypotheses
from .prediction import Prediction
from .upsampling import embed, nonzero_box, resample_box, union_box

Box = tuple[slice, slice, slice]


def _drawn_on_case_grid(drawn: DrawnHypotheses, shape) -> tuple[np.ndarray, np.ndarray, dict, Box | None]:
    """prob (3, *shape), the K hypotheses as label maps (K, *shape) and the statistics maps, in one
    resampling pass over the region of interest (they are zero outside it), and where they can be non-zero."""
    k, grid = drawn.regions.shape[0], drawn.regions.shape[2:]
    names = list(drawn.statistics)
    stacked = [drawn.prob, drawn.regions.reshape(3 * k, *grid), np.stack([drawn.statistics[n] for n in names])]
    values, where = resample_box(stacked, tuple(shape))
    prob = embed(values[:3], where, shape)
    labels = from_regions(values[3 : 3 + 3 * k].reshape(k, 3, *values.shape[1:]).swapaxes(0, 1))
    samples = embed(labels, where, shape, np.uint8)
    statistics = {n: embed(values[3 + 3 * k + i], where, shape) for i, n in enumerate(names)}
    return prob, samples, statistics, where


def _features_on_case_grid(enc: Encoding, modalities, shape) -> dict:
    """F_c, F_cf, F_u,m and w_m on the case grid, in one resampling pass over the head (zero outside it)."""
    m = len(modalities)
    values, where = resample_box([enc.consensus[None], enc.conflict[None], enc.specific, enc.weights], tuple(shape))
    return {
        "consensus": embed(values[0], where, shape),
        "conflict": embed(values[1], where, shape),
        "specific": {mod: embed(values[2 + i], where, shape) for i, mod in enumerate(modalities)},
        "weights": {mod: embed(values[2 + m + i], where, shape) for i, mod in enumerate(modalities)},
    }


def _mask_box(where: Box | None, marked: np.ndarray | None) -> Box | None:
    """Where the mask can be non-zero: the hypotheses' box, grown to the voxels a user marked
    tumour, which may lie anywhere (None: the whole volume)."""
    boxes = [b for b in (where, None if marked is None else nonzero_box(marked[None])) if b is not None]
    return union_box(boxes) if boxes else None


def hypothesis_volumes_ml(counted: np.ndarray, voxel_ml: float) -> dict[str, np.ndarray]:
    """Region volumes (mL) of each of the (K, ...) label maps."""
    counts = np.stack([np.bincount(s.ravel(), minlength=5) for s in counted])  # (K, label values)
    return {r: counts[:, list(REGION_LABELS[r])].sum(1) * voxel_ml for r in REGIONS}


def assemble(
    case: Case,
    enc: Encoding,
    drawn: DrawnHypotheses,
    modalities,
    *,
    fixed: np.ndarray | None = None,
    fixed_labels: np.ndarray | None = None,
    whole_case: bool = True,
) -> tuple[Prediction, dict[str, np.ndarray]]:
    """Every output on the case grid, and the region volumes of each hypothesis (mL).

    ``whole_case`` False: ``drawn`` covers only part of the region (an explanation's re-run), where a
    tumour's part cut off by the drawn box must not be taken for a part without core."""
    shape, k = case.shape, drawn.regions.shape[0]
    prob, samples, statistics, where = _drawn_on_case_grid(drawn, shape)
    if fixed is not None:  # the user's decisions come back exactly, and certain
        samples[:, fixed] = fixed_labels[fixed]
        prob[:, fixed] = to_regions(fixed_labels[fixed])
        for v in statistics.values():
            v[fixed] = 0.0
    # the mask is the hypotheses' majority vote per region, less its parts without tumour core;
    # prob (calibrated) feeds the TrustMap
    mask = from_regions(region_votes(samples) > k / 2)
    marked = fixed & (fixed_labels > 0) if fixed is not None else None
    dropped = drop_coreless_parts(mask, box=_mask_box(where, marked), keep=marked) if whole_case else 0
    trust = np.zeros(shape, np.float32)  # 0 wherever prob is 0 or 1: outside ``where`` and at fixed voxels
    if where is not None:
        trust[where] = trustmap(prob[(slice(None), *where)])
    # fixed voxels may lie anywhere; otherwise hypotheses are non-zero only inside ``where``
    counted = samples if fixed is not None or where is None else samples[(slice(None), *where)]
    volumes = hypothesis_volumes_ml(counted, case.grid.voxel_volume_ml)
    pred = Prediction(
        mask=mask,
        prob=prob,
        samples=samples,
        trustmap=trust,
        **statistics,
        **_features_on_case_grid(enc, modalities, shape),
        summary={"dropped_without_core_ml": dropped * case.grid.voxel_volume_ml},
    )
    return pred, volumes
