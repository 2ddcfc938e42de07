"""Parts of the mask without tumour core leave it; a tumour itself never does, nor the TrustMap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_entrust.inference.assembly import assemble
from napari_entrust.inference.coreless_parts import coreless_parts, drop_coreless_parts
from napari_entrust.inference.encoding import Encoding
from napari_entrust.inference.hypotheses import STATISTICS, DrawnHypotheses
from napari_entrust.io.labels import ED, ET, NCR, to_regions

SHAPE = (40, 40, 30)
TUMOUR = (slice(5, 15), slice(5, 15), slice(5, 15))
CORE = (slice(8, 12), slice(8, 12), slice(8, 12))
PATCH = (slice(28, 34), slice(28, 34), slice(20, 26))  # oedema-bright cortex, far from the tumour


def labelled(*, core: bool = True, patch: bool = True, shape=SHAPE) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[TUMOUR] = ED
    if core:
        labels[CORE] = NCR
        labels[9:11, 9:11, 9:11] = ET
    if patch:
        labels[PATCH] = ED
    return labels


def test_a_separate_part_without_core_is_dropped_and_the_tumour_kept():
    labels = labelled()
    dropped = coreless_parts(labels)
    expected = np.zeros(SHAPE, bool)
    expected[PATCH] = True
    np.testing.assert_array_equal(dropped, expected)
    cleared = labels.copy()
    assert drop_coreless_parts(cleared) == expected.sum()
    np.testing.assert_array_equal(cleared, np.where(expected, 0, labels))


def test_a_tumour_seen_only_as_oedema_stays_whole():
    labels = labelled(core=False)
    assert coreless_parts(labels) is None


def test_a_part_touching_the_tumour_at_a_corner_stays_attached():
    labels = labelled(patch=False)
    labels[15, 15, 15] = ED  # diagonal neighbour of the tumour's corner voxel (14, 14, 14)
    labels[16:20, 16:20, 16:20] = ED
    assert coreless_parts(labels) is None


def test_a_part_the_user_marked_tumour_is_kept():
    labels = labelled()
    marked = np.zeros(SHAPE, bool)
    marked[30, 30, 22] = True
    assert coreless_parts(labels, keep=marked) is None


def test_only_the_given_box_is_searched_and_the_answer_is_on_the_whole_grid():
    labels = labelled()
    box = (slice(0, 36), slice(0, 36), slice(0, 28))
    dropped = coreless_parts(labels, box=box)
    assert dropped.shape == SHAPE and dropped[PATCH].all() and dropped.sum() == labels[PATCH].size


def _encoding(shape) -> Encoding:
    """Feature maps for :func:`assemble` (a 2 mm case: the model grid is the case grid)."""
    zeros = np.zeros(shape, np.float32)
    return Encoding(
        zeros, zeros + 0.5, zeros + 0.5, np.ones((4, *shape), np.float32), np.ones((4, *shape), np.float32) / 4,
        torch.zeros(1), (slice(None), slice(None)), np.ones(shape, bool), torch.zeros(1),
    )  # fmt: skip


@pytest.mark.parametrize("whole_case", [True, False])
def test_the_mask_drops_the_part_and_the_hypotheses_and_trustmap_keep_it(phantom2, whole_case):
    """The mask leaves the part out and the summary says how much; what the model drew (hypotheses,
    probabilities, TrustMap and its statistics) stays for the reviewer. A partial re-run (an
    explanation's) drops nothing: a tumour cut by its box is not a part without core."""
    case = phantom2.to_case()
    labels = labelled(shape=case.shape)
    regions = to_regions(labels).astype(bool)
    prob = np.where(regions, 0.7, 0.0).astype(np.float32)
    stats = {name: np.where(regions[0], 0.3, 0.0).astype(np.float32) for name in STATISTICS}
    drawn = DrawnHypotheses(prob, np.stack([regions] * 3), stats)
    pred, volumes = assemble(case, _encoding(case.shape), drawn, case.modalities, whole_case=whole_case)
    patch_ml = labels[PATCH].size * case.grid.voxel_volume_ml
    drawn_maps = [pred.trustmap, pred.entropy, pred.mutual_info, pred.probe, pred.prob[0], *pred.samples]
    assert all(m[PATCH].all() for m in drawn_maps)
    assert (pred.mask[TUMOUR] == labels[TUMOUR]).all()
    assert (pred.mask[PATCH] == 0).all() if whole_case else (pred.mask[PATCH] == ED).all()
    assert pred.summary["dropped_without_core_ml"] == pytest.approx(patch_ml if whole_case else 0.0)
    assert volumes["WT"] == pytest.approx([regions[0].sum() * case.grid.voxel_volume_ml] * 3)


def test_a_part_joined_to_voxels_the_user_marked_tumour_stays(phantom2):
    """A part the model drew without core stays when it touches oedema the user painted beyond
    everything the model drew: the part is searched as a whole, not cut at the drawn box."""
    case = phantom2.to_case()
    labels = labelled(shape=case.shape)  # the tumour, and a coreless patch the model drew
    regions = to_regions(labels).astype(bool)
    prob = np.where(regions, 0.7, 0.0).astype(np.float32)
    stats = {name: np.where(regions[0], 0.3, 0.0).astype(np.float32) for name in STATISTICS}
    drawn = DrawnHypotheses(prob, np.stack([regions] * 3), stats)
    beside = (slice(PATCH[0].stop, PATCH[0].stop + 3), PATCH[1], PATCH[2])  # just past the drawn box
    fixed = np.zeros(case.shape, bool)
    fixed[beside] = True
    painted = np.zeros(case.shape, np.uint8)
    painted[beside] = ED
    pred, _ = assemble(case, _encoding(case.shape), drawn, case.modalities, fixed=fixed, fixed_labels=painted)
    assert (pred.mask[PATCH] == ED).all() and (pred.mask[beside] == ED).all()
    assert pred.summary["dropped_without_core_ml"] == 0.0
