"""Re-sampling with user edits held fixed (the review widget's core), with the bundled model."""

from __future__ import annotations

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
    # far from every edit nothing is harmonised: the map stays close to the first pass
    far = ~ndimage.binary_dilation(fixed, iterations=12) & (before.trustmap > 0.2)
    assert abs(after.trustmap[far].mean() - before.trustmap[far].mean()) < 0.1


def test_fixed_voxels_must_match_the_case(first_pass):
    case, bundle, sampling, _ = first_pass
    with pytest.raises(ValueError, match="must both have the case's shape"):
        predict_case(case, bundle, sampling, fixed=np.zeros((3, 3, 3), bool), fixed_labels=np.zeros((3, 3, 3)))
