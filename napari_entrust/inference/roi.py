"""Where hypotheses are drawn: the candidate tumour of the fused head, grown by a margin.

Sampling K × S denoiser passes everywhere would cost the whole head; the fused head (one cheap
pass) says where tumour is possible, and only that region, plus the neighbourhood of any voxel a
user fixed, is sampled.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from .slices import resample

ROI_THRESHOLD = 0.3  #: fused-head WT probability above which a voxel may be tumour
ROI_MIN_VOXELS = 10  #: smaller candidate specks are ignored (0.08 mL at 2 mm)
ROI_MARGIN = 4  #: model-grid voxels added around the candidates
CONFLICT_THRESHOLD = 0.5  #: conflict-head probability above which the modalities may disagree
CONFLICT_REACH = 8  #: model-grid voxels (16 mm at 2 mm) from the candidate tumour a conflict may lie


def region_of_interest(fused_wt: np.ndarray, head: np.ndarray, conflict: np.ndarray | None = None) -> np.ndarray:
    """Where hypotheses are drawn: candidate tumour from the fused head, specks removed, grown by a margin.

    ``conflict``: a conflict head's probability (models trained with a conflict target). Where it says
    the modalities disagree near the candidate tumour, the region takes those voxels too, whatever
    their size: a T1ce-only focus of 3-5 mm is a few model voxels the fused head may call background,
    and hypotheses can only diverge where they are drawn.
    """
    candidates = (fused_wt >= ROI_THRESHOLD) & head
    labelled, n = ndimage.label(candidates)
    if n:
        sizes = ndimage.sum_labels(candidates, labelled, index=np.arange(1, n + 1))
        candidates = np.isin(labelled, 1 + np.flatnonzero(sizes >= ROI_MIN_VOXELS))
    if not candidates.any():
        return candidates
    if conflict is not None:  # a disagreement far from any tumour is not this tumour's
        disagree = (conflict >= CONFLICT_THRESHOLD) & head
        if disagree.any():
            candidates = candidates | (grown(candidates, CONFLICT_REACH) & disagree)
    return grown(candidates, ROI_MARGIN) & head


def grown(mask: np.ndarray, voxels: int) -> np.ndarray:
    """``mask`` dilated by ``voxels``, computed on its bounding box grown by as much: the same
    result as dilating the whole volume, 4× faster for a tumour-sized mask."""
    if not mask.any():
        return mask.copy()
    bounds = ndimage.find_objects(mask.view(np.uint8))[0]  # a view: no copy of the volume
    box = tuple(slice(max(s.start - voxels, 0), s.stop + voxels) for s in bounds)
    out = np.zeros_like(mask)
    out[box] = ndimage.binary_dilation(mask[box], iterations=voxels)
    return out


def with_fixed_voxels(roi: np.ndarray, known: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The region grown to hold every fixed voxel outside it, with its margin (the neighbourhood such
    an edit re-settles). Fixed voxels inside the region leave it as it is, so its parts keep their
    boxes and re-sampling can reuse the slices an edit does not touch
    (:meth:`~.hypotheses.DrawnHypotheses.reusable`). The cost: a fixed voxel near the region's edge
    no longer pulls the region out by the margin beyond it; the region's own margin (voxels the
    fused head thinks certain background) is all its neighbours there can re-settle into."""
    outside = known & ~roi
    if not outside.any():
        return roi
    return roi | (grown(outside, ROI_MARGIN) & head)


def region_boxes(roi: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, slice, slice]]]:
    """One box per connected part of the region (its label map, and the boxes): cost follows the
    region's volume, not its spread."""
    parts, _ = ndimage.label(roi)
    return parts, [b for b in ndimage.find_objects(parts) if b is not None]


def on_model_grid(fixed: np.ndarray, regions: np.ndarray, grid) -> tuple[np.ndarray, np.ndarray]:
    """Fixed voxels and their region values on the model grid (a model voxel is fixed if mostly fixed)."""
    if tuple(fixed.shape) == tuple(grid):
        return fixed, regions
    both = torch.from_numpy(np.concatenate([fixed[None], regions]).astype(np.float32))
    out = resample(both, tuple(grid)).numpy() > 0.5
    return out[0], out[1:]


def box_on_model_grid(box: tuple[slice, ...], shape, grid, margin: int = 1) -> tuple[slice, slice, slice]:
    """A case-grid box as the model-grid box that covers it, rounded outwards and grown by ``margin``
    model voxels (trilinear upsampling reads one model voxel beyond a case voxel's own)."""
    out = []
    for b, s, g in zip(box, shape, grid):
        start, stop = b.start or 0, s if b.stop is None else b.stop
        out.append(slice(max(0, int(np.floor(start * g / s)) - margin), min(g, int(np.ceil(stop * g / s)) + margin)))
    return tuple(out)
