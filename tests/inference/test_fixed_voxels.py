"""Re-sampling with user edits held fixed (the review widget's core), with the bundled model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from napari_entrust.inference.engine import predict_case
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.review.regions import find_uncertain_regions


@pytest.fixture(scope="module")
def first_pass(phantom2):
    case = phantom2.to_case()
    bundle = load_checkpoint()
    sampling = SamplingConfig(samples=8, steps=10, probe_steps=2)
    return case, bundle, sampling, predict_case(case, bundle, sampling)


def test_edited_voxels_stay_fixed_and_uncertainty_drops_next_to_them(first_pass):
    case, bundle, sampling, before = first_pass
    regions = find_uncertain_regions(
        before.trustmap,
        voxel_ml=case.grid.voxel_volume_ml,
        weights=before.weights,
        specific=before.specific,
        conflict=before.conflict,
    )
    assert len(regions) >= 2
    # the user settles one half of each of the (up to 8) most uncertain regions by adopting a hypothesis there
    fixed = np.zeros(case.shape, bool)
    labels = before.mask.copy()
    for i, region in enumerate(regions[:8]):
        inside = region.full_mask(case.shape)
        x = np.nonzero(inside)[0]
        half = inside & (np.arange(case.shape[0])[:, None, None] < np.median(x))
        fixed |= half
        labels[half] = before.samples[i % sampling.samples][half]
    after = predict_case(case, bundle, sampling, fixed=fixed, fixed_labels=labels)

    np.testing.assert_array_equal(after.mask[fixed], labels[fixed])
    for k in range(sampling.samples):
        np.testing.assert_array_equal(after.samples[k][fixed], labels[fixed])
    assert (after.trustmap[fixed] == 0).all()
    assert after.summary["parameters"]["fixed_voxels"] == int(fixed.sum())
    # the other uncertain voxels next to the edits re-settle: their uncertainty drops
    near = ndimage.binary_dilation(fixed, iterations=2) & ~fixed & (before.mutual_info > 0.2)
    assert near.sum() >= 20
    # the hypotheses agree more there (MI); the calibrated TrustMap, a softened p̄, drops less
    assert after.mutual_info[near].mean() < 0.9 * before.mutual_info[near].mean()
    assert after.trustmap[near].mean() < 0.97 * before.trustmap[near].mean()
    # the harmonisation (RePaint jumps on the late steps) is what settles them, more than inpainting alone
    plain = predict_case(case, bundle, replace(sampling, inpaint_jumps=0), fixed=fixed, fixed_labels=labels)
    assert after.mutual_info[near].mean() < 0.9 * plain.mutual_info[near].mean()
    # far from every edit nothing is harmonised: the map stays close to the first pass
    far = ~ndimage.binary_dilation(fixed, iterations=12) & (before.trustmap > 0.2)
    assert abs(after.trustmap[far].mean() - before.trustmap[far].mean()) < 0.1


def test_fixed_voxels_must_match_the_case(first_pass):
    case, bundle, sampling, _ = first_pass
    with pytest.raises(ValueError, match="must both have the case's shape"):
        predict_case(case, bundle, sampling, fixed=np.zeros((3, 3, 3), bool), fixed_labels=np.zeros((3, 3, 3)))


def _one_slice_edit(case, before) -> tuple[np.ndarray, int]:
    """Fixed voxels inside the tumour, in one axial slice only."""
    x, y, z = (int(np.median(a)) for a in np.nonzero(before.mask))
    fixed = np.zeros(case.shape, bool)
    fixed[x - 3 : x + 3, y - 3 : y + 3, z] = True
    return fixed, z


def test_slices_without_edits_keep_their_hypotheses_exactly(first_pass):
    # only edited slices pay for the harmonisation; the others are drawn as in the plain run
    case, bundle, sampling, before = first_pass
    fixed, z = _one_slice_edit(case, before)
    after = predict_case(case, bundle, sampling, fixed=fixed, fixed_labels=before.mask)
    others = np.arange(case.shape[2]) != z
    np.testing.assert_array_equal(after.samples[..., others], before.samples[..., others])
    np.testing.assert_array_equal(after.trustmap[..., others], before.trustmap[..., others])
    assert (after.samples[..., z] != before.samples[..., z]).any() or (after.trustmap[..., z] == 0).any()


def test_re_sampling_redoes_only_what_the_edits_change_and_gives_the_fresh_result(first_pass, monkeypatch):
    import napari_entrust.inference.engine as engine
    import napari_entrust.inference.hypotheses as hypotheses
    from napari_entrust.inference.run_cache import RunCache

    case, bundle, sampling, before = first_pass
    normalised, encoded, drawn = [], [], []
    for module, name, calls in (
        (engine, "case_volume", normalised),
        (engine, "encode_volume", encoded),
        (hypotheses, "_draw_chunk", drawn),
    ):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _to=calls, **kw: _to.append(a) or _real(*a, **kw))
    cache = RunCache()
    np.testing.assert_array_equal(predict_case(case, bundle, sampling, last_run=cache).samples, before.samples)
    fixed, z = _one_slice_edit(case, before)  # inside the tumour; the 2 mm case is on the model grid
    drawn.clear()
    reused = predict_case(case, bundle, sampling, fixed=fixed, fixed_labels=before.mask, last_run=cache)
    assert len(normalised) == len(encoded) == 1
    assert sorted(z for call in drawn for z in call[4]) == [z]  # only the edited slice is drawn again
    fresh = predict_case(case, bundle, sampling, fixed=fixed, fixed_labels=before.mask)
    np.testing.assert_array_equal(reused.samples, fresh.samples)
    np.testing.assert_allclose(reused.trustmap, fresh.trustmap, atol=1e-5)  # batch-size rounding at most
    # undoing the edit: the slice that held it is drawn again, and the first pass comes back
    drawn.clear()
    undone = predict_case(case, bundle, sampling, last_run=cache)
    assert sorted(z for call in drawn for z in call[4]) == [z]
    np.testing.assert_array_equal(undone.samples, before.samples)
    # tumour painted in healthy tissue grows the region there: its slices are drawn, as in a fresh run
    painted = np.zeros(case.shape, bool)
    far = np.argwhere((case.images["t1"] > 0) & ~ndimage.binary_dilation(before.trustmap > 0, iterations=12))
    x, y, zz = far[len(far) // 2]
    painted[x - 2 : x + 2, y - 2 : y + 2, zz - 1 : zz + 2] = True
    labels = np.where(painted, 2, before.mask).astype(np.uint8)
    drawn.clear()
    grown = predict_case(case, bundle, sampling, fixed=painted, fixed_labels=labels, last_run=cache)
    assert zz in {z for call in drawn for z in call[4]}
    fresh = predict_case(case, bundle, sampling, fixed=painted, fixed_labels=labels)
    np.testing.assert_array_equal(grown.samples, fresh.samples)
    # another image is normalised and encoded afresh; another conflict scale is encoded afresh
    changed = replace(case, images={**case.images, "t1ce": case.images["t1ce"] * 1.5})
    normalised.clear(), encoded.clear()
    predict_case(changed, bundle, sampling, last_run=cache)
    assert len(normalised) == len(encoded) == 1
    predict_case(changed, bundle, replace(sampling, conflict_scale=0.0), last_run=cache)
    assert (len(normalised), len(encoded)) == (1, 2)


def test_a_run_within_a_box_draws_exactly_the_whole_run_there_and_nothing_elsewhere(first_pass):
    # explanations re-run the pipeline once per modality and read it only in the region's box
    case, bundle, sampling, before = first_pass
    x, y, z = (int(np.median(a)) for a in np.nonzero(before.mask))
    box = (slice(x - 6, x + 6), slice(y - 6, y + 6), slice(z - 2, z + 3))
    part = predict_case(case, bundle, sampling, within=box)
    np.testing.assert_array_equal(part.samples[(slice(None), *box)], before.samples[(slice(None), *box)])
    np.testing.assert_array_equal(part.trustmap[box], before.trustmap[box])
    np.testing.assert_array_equal(part.mask[box], before.mask[box])
    outside = np.ones(case.shape, bool)
    outside[:, :, max(0, z - 6) : z + 7] = False  # beyond the box's slices (and a model voxel's reach)
    assert not part.samples[:, outside].any() and before.samples[:, outside].any()
