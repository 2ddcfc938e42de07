"""Training cases from phantoms: the domain is part of what is cached, and the cache reads back."""

from __future__ import annotations

import numpy as np

from napari_entrust.training.cases import phantom_cases


def test_randomised_and_standard_cases_are_cached_apart_and_read_back(tmp_path):
    standard = phantom_cases([7], spacing=4, model_spacing=4.0, cache_dir=tmp_path)
    randomised = phantom_cases([7], spacing=4, model_spacing=4.0, cache_dir=tmp_path, domain="randomised")
    assert len(list(tmp_path.glob("*.images.npy"))) == 2
    assert standard[0].name != randomised[0].name
    assert not np.array_equal(standard[0].images, randomised[0].images)
    again = phantom_cases([7], spacing=4, model_spacing=4.0, cache_dir=tmp_path, domain="randomised")
    np.testing.assert_array_equal(again[0].images, randomised[0].images)
    np.testing.assert_array_equal(again[0].raters, randomised[0].raters)
    assert again[0].images.shape[0] == 4 and again[0].raters.shape[1:] == again[0].images.shape[1:]
