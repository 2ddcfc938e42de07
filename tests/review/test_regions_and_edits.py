"""Review core (no Qt): uncertain regions and their "why", and what a reviewer's edits hold fixed."""

from __future__ import annotations

import numpy as np
import pytest

from napari_entrust.review.edits import Edit, ReviewState, adopt_values, erase_values
from napari_entrust.review.regions import find_uncertain_regions, modality_pattern


def _maps(shape=(20, 20, 20)):
    trust = np.zeros(shape, np.float32)
    trust[2:5, 2:5, 2:5] = 0.8  # 27 voxels, mass 21.6
    trust[10:12, 10:12, 10:12] = 0.5  # 8 voxels, mass 4.0
    trust[15:18, 15:17, 15] = 0.9  # 6 voxels, mass 5.4
    trust[0, 19, 19] = 0.95  # a single voxel: below the minimum size
    weights = {m: np.full(shape, 0.25, np.float32) for m in ("t1", "t1ce", "t2", "flair")}
    weights["flair"][2:5, 2:5, 2:5], weights["t1"][2:5, 2:5, 2:5] = 0.55, 0.05
    specific = {m: np.ones(shape, np.float32) for m in weights}
    specific["flair"][2:5, 2:5, 2:5] = 3.0
    conflict = np.ones(shape, np.float32)
    conflict[2:5, 2:5, 2:5] = 2.0
    return trust, weights, specific, conflict


def test_regions_are_ranked_by_uncertainty_mass_with_hand_computed_numbers():
    trust, weights, specific, conflict = _maps()
    regions = find_uncertain_regions(trust, voxel_ml=0.008, weights=weights, specific=specific, conflict=conflict)
    assert [r.voxels for r in regions] == [27, 6, 8]
    assert [r.mass for r in regions] == pytest.approx([21.6, 5.4, 4.0])
    first = regions[0]
    assert first.size_ml == pytest.approx(27 * 0.008)
    assert first.mean_trust == pytest.approx(0.8)
    assert first.centre == pytest.approx((3.0, 3.0, 3.0))
    # FLAIR: weight 0.55 × activity 3 = 1.65; T1: 0.05; T1ce, T2: 0.25 each -> shares of 2.2
    assert first.pattern == pytest.approx({"t1": 0.05 / 2.2, "t1ce": 0.25 / 2.2, "t2": 0.25 / 2.2, "flair": 1.65 / 2.2})
    assert first.conflict_ratio == pytest.approx(2.0)
    assert first.why == "driven by FLAIR 75%; modalities disagree (conflict ×2.0)"
    assert regions[1].why == "no single modality dominates"
    assert (
        find_uncertain_regions(
            trust, voxel_ml=0.008, weights=weights, specific=specific, conflict=conflict, threshold=0.85
        )[0].voxels
        == 6
    )
    with pytest.raises(ValueError, match="threshold"):
        find_uncertain_regions(trust, voxel_ml=1, weights=weights, specific=specific, conflict=conflict, threshold=1.0)


def test_modality_pattern_sums_to_one():
    mask = np.ones((2, 2, 2), bool)
    w = {"a": np.full((2, 2, 2), 0.5), "b": np.full((2, 2, 2), 0.5)}
    s = {"a": np.full((2, 2, 2), 4.0), "b": np.full((2, 2, 2), 1.0)}
    assert modality_pattern(mask, w, s, {"a": 2.0, "b": 1.0}) == pytest.approx({"a": 2 / 3, "b": 1 / 3})


def test_the_outline_box_holds_the_region_with_background_around_it():
    # the viewer draws the region's outline in this box: napari's contour needs background around
    # the region to close it, and the box must hold the region where the volume has it
    trust, weights, specific, conflict = _maps()
    region = find_uncertain_regions(trust, voxel_ml=1, weights=weights, specific=specific, conflict=conflict)[0]
    box, mask = region.grown_box((20, 20, 20), 2)
    placed = np.zeros((20, 20, 20), bool)
    placed[box] = mask
    np.testing.assert_array_equal(placed, region.full_mask((20, 20, 20)))
    for axis in range(3):
        for end in (0, -1):
            assert not np.take(mask, end, axis=axis).any()
    edge_box, edge_mask = region.grown_box((20, 20, 20), 50)  # never beyond the volume
    assert all(b == slice(0, 20) for b in edge_box) and edge_mask.sum() == region.voxels


def test_actions_touch_only_the_region_and_fixed_voxels_follow_the_edits():
    trust, weights, specific, conflict = _maps()
    region = find_uncertain_regions(trust, voxel_ml=1, weights=weights, specific=specific, conflict=conflict)[0]
    samples = np.zeros((2, 20, 20, 20), np.uint8)
    samples[1] = 2
    idx, values = adopt_values(region, samples, 1)
    assert len(idx[0]) == 27 and (values == 2).all()
    assert region.full_mask((20, 20, 20))[idx].all()
    assert (erase_values(region)[1] == 0).all()

    predicted = np.zeros((20, 20, 20), np.uint8)
    state = ReviewState.start(predicted)
    current = predicted.copy()
    current[idx] = values
    current[10, 0, 0] = 4  # painted by hand
    state.record(Edit("adopt", region.voxels, region.number, 2), region)
    fixed = state.fixed(current)
    assert fixed.sum() == 28 and fixed[10, 0, 0] and fixed[idx].all()
    state.record(Edit("keep", 8), None)  # without a region nothing new is decided
    assert state.fixed(current).sum() == 28
    assert [e.to_dict()["action"] for e in state.edits] == ["adopt", "keep"]
    assert "bbox" not in state.edits[0].to_dict()


def test_the_review_state_follows_undo_and_keeps_settled_decisions_after_a_rebase():
    from napari_entrust.review.regions import UncertainRegion

    box = (slice(2, 5), slice(2, 5), slice(2, 5))
    region = UncertainRegion(1, box, np.ones((3, 3, 3), bool), 27, 0.027, 0.6, 16.0, (3, 3, 3), {"t1": 1.0}, 1.0)
    state = ReviewState.start(np.zeros((8, 8, 8), np.uint8))
    done = {"a": True, "b": True}
    state.is_done = lambda step: done[step]
    state.record(Edit("keep", 27, 1), region, step="a")
    state.record(Edit("paint", 3), step="b")
    assert [e.action for e in state.edits] == ["keep", "paint"] and state.reviewed(region)
    done["a"] = False  # the keep undone: out of the log, the region no longer decided
    assert [e.action for e in state.edits] == ["paint"] and not state.reviewed(region)
    assert not state.decided.any()
    done["a"] = True  # redone
    state.rebase(np.zeros((8, 8, 8), np.uint8))
    done["a"] = done["b"] = False  # after a re-sample the viewer's old steps are gone, the decisions stay
    assert [e.action for e in state.edits] == ["keep", "paint"] and state.reviewed(region)
    assert state.decided[box].all() and state.decided.sum() == 27
