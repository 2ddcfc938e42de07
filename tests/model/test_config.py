"""Sampling options a user can give are validated with a message."""

from __future__ import annotations

import pytest

from napari_entrust.model.config import SamplingConfig


def test_sampling_options_are_validated():
    for bad in (dict(samples=0), dict(steps=0), dict(probe_strength=1.0), dict(eta=2.0), dict(probe_steps=20)):
        with pytest.raises(ValueError):
            SamplingConfig(**bad).validate()
