"""Label conventions and regions: votes of the hypotheses per region."""

from __future__ import annotations

import numpy as np

from napari_entrust.io.labels import REGIONS, in_region, region_votes


def test_region_votes_count_hypotheses_per_region():
    rng = np.random.default_rng(0)
    samples = rng.choice(np.array([0, 1, 2, 4], np.uint8), size=(7, 5, 6, 3))
    votes = region_votes(samples)
    for i, r in enumerate(REGIONS):
        np.testing.assert_array_equal(votes[i], in_region(samples, r).sum(0), err_msg=r)
    many = np.full((300, 2, 2, 2), 4, np.uint8)  # more hypotheses than a uint8 count holds
    assert region_votes(many).min() == 300
