"""Where hypotheses are drawn: the fused head's candidate tumour, and a conflict head's disagreements near it."""

import numpy as np

from napari_entrust.inference.roi import CONFLICT_REACH, ROI_MARGIN, region_of_interest


def _scene():
    """A 6-voxel cube of candidate tumour in a head of 48³ model voxels."""
    shape = (48, 48, 48)
    head = np.ones(shape, bool)
    fused = np.zeros(shape, np.float32)
    fused[20:26, 20:26, 20:26] = 0.9
    return fused, head


def test_a_small_disagreement_near_the_tumour_is_sampled_and_a_far_one_is_not():
    fused, head = _scene()
    conflict = np.zeros_like(fused)
    near = (20, 26 + ROI_MARGIN + 2, 22)  # beyond the margin, within reach: a 1-voxel T1ce-only focus
    far = (20, 26 + CONFLICT_REACH + 6, 40)
    conflict[near] = conflict[far] = 0.9
    without = region_of_interest(fused, head)
    with_conflict = region_of_interest(fused, head, conflict)
    assert not without[near] and with_conflict[near]  # a speck below the size floor still counts
    assert not with_conflict[far]
    assert (with_conflict >= without).all()


def test_without_a_confident_conflict_the_region_is_the_fused_heads():
    fused, head = _scene()
    weak = np.full_like(fused, 0.3)  # the head is unsure everywhere: nothing is added
    assert np.array_equal(region_of_interest(fused, head, weak), region_of_interest(fused, head))
    assert not region_of_interest(np.zeros_like(fused), head, np.ones_like(fused)).any()  # no tumour, no region
