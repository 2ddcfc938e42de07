"""Intensity normalisation for the model: robust inside the head, never applied to saved images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_entrust.inference.normalize import fill_holes, head_mask, normalize_case
from napari_entrust.io.modalities import MODALITIES


def test_normalisation_is_robust_inside_the_head_and_leaves_images_alone(phantom2):
    case = phantom2.to_case()
    raw = {m: v.copy() for m, v in case.images.items()}
    normed, stats = normalize_case(case)
    mask = head_mask(case.images)
    overlap = (mask & phantom2.brain).sum() / (mask | phantom2.brain).sum()
    assert overlap > 0.97  # the head mask of skull-stripped data is the brain
    for m in MODALITIES:
        inside = normed[m][mask]
        assert np.percentile(inside, 0.5) == pytest.approx(0.0, abs=1e-6)
        assert np.percentile(inside, 99.5) == pytest.approx(1.0, abs=1e-6)
        assert np.all(normed[m][~mask] == 0)
        np.testing.assert_array_equal(case.images[m], raw[m])
        assert stats[m].high > stats[m].low


def test_head_mask_fills_holes_as_scipy_does():
    rng = np.random.default_rng(1)
    masks = [rng.random((20, 24, 18)) < rng.uniform(0.3, 0.8) for _ in range(10)]
    shell = np.zeros((20, 20, 20), bool)
    shell[3:17, 3:17, 3:17] = True
    shell[6:14, 6:14, 6:14] = False  # a closed cavity: filled
    open_cut = shell.copy()
    open_cut[9:11, 9:11, :10] = False  # a channel to the border: not a hole
    for mask in [*masks, shell, open_cut]:
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    assert fill_holes(shell)[10, 10, 10] and not fill_holes(open_cut)[10, 10, 5]


def test_normalisation_ignores_a_noisy_background():
    rng = np.random.default_rng(0)
    head = np.zeros((40, 40, 40), np.float32)
    head[8:32, 8:32, 8:32] = 1000
    noisy = head + rng.rayleigh(15, head.shape).astype(np.float32)
    mask = head_mask({"t1": noisy})
    assert mask[10:30, 10:30, 10:30].all() and not mask[:5].any()
