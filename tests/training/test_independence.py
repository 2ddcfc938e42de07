"""The independence losses: HSIC sees dependence that cross-covariance misses."""

from __future__ import annotations

import torch

from napari_entrust.training.independence import cross_covariance, hsic


def test_hsic_sees_the_nonlinear_dependence_cross_covariance_misses():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-2, 2, 401)[:, None]  # symmetric: x and x² are exactly uncorrelated
    independent = x[torch.randperm(401, generator=g)]
    assert cross_covariance(x, x) > 0.9
    assert cross_covariance(x, x**2) < 1e-6  # uncorrelated ...
    assert hsic(x, x**2) > 5 * hsic(x, independent)  # ... but dependent, and HSIC says so
