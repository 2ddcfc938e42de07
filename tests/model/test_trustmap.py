"""TrustMap statistics by hand, and a calibration head that keeps the mask and the uncertainty order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_entrust.model.trustmap import CalibrationHead, binary_entropy, trust_statistics, trustmap


def test_trust_statistics_match_hand_computed_values():
    confident_split = torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1, 1).expand(1, 2, 3, 1, 1)  # hypotheses disagree
    coin = torch.full((1, 2, 3, 1, 1), 0.5)  # every hypothesis unsure
    cf = torch.zeros((1, 1, 1))
    s = trust_statistics(confident_split, None, None, cf, 0.0)[0, 0, :, 0, 0]
    assert s[0] == pytest.approx(0.5) and s[1] == pytest.approx(1.0, abs=1e-4)
    assert s[2] == pytest.approx(0.0, abs=1e-4) and s[3] == pytest.approx(1.0, abs=1e-4)  # all epistemic
    s = trust_statistics(coin, None, None, cf, 0.0)[0, 0, :, 0, 0]
    assert s[2] == pytest.approx(1.0, abs=1e-4) and s[3] == pytest.approx(0.0, abs=1e-4)  # all aleatoric
    plus, minus = torch.full((1, 3, 1, 1), 0.7), torch.full((1, 3, 1, 1), 0.5)
    s = trust_statistics(coin, plus, minus, cf, 0.2)[0, 0, :, 0, 0]
    assert s[4] == pytest.approx(0.5)  # |0.7 − 0.5| / (2 · 0.2)
    assert binary_entropy(torch.tensor(0.5)) == pytest.approx(1.0)
    np.testing.assert_allclose(trustmap(np.array([[0.5], [0.9], [0.0]])), [1.0])
    np.testing.assert_allclose(trustmap(np.array([[0.95], [0.9], [0.0]])), [0.2], atol=1e-6)


def test_calibration_head_keeps_the_mask_and_the_uncertainty_order_and_learns_sharpness():
    from napari_entrust.inference.distributed import DistributedContext
    from napari_entrust.training.calibration import train_calibration
    from napari_entrust.training.train_config import TrainConfig

    head = CalibrationHead()
    p = torch.linspace(0.01, 0.99, 99)
    stats = torch.zeros(1, 3, 6, 1, 99)
    stats[:, :, 0] = p
    np.testing.assert_allclose(torch.sigmoid(head(stats))[0, :, 0].detach(), p.expand(3, -1), atol=1e-5)  # identity
    with torch.no_grad():
        head.raw_slopes.normal_(0.0, 2.0)  # any learned shape
    q = torch.sigmoid(head(stats))[0, :, 0].detach()
    assert torch.equal(q >= 0.5, (p >= 0.5).expand(3, -1))  # the mask does not move
    u_before, u_after = 1 - (2 * p - 1).abs(), 1 - (2 * q - 1).abs()
    order = torch.argsort(u_before)
    assert (torch.diff(u_after[:, order], dim=1) >= -1e-6).all()  # nor does the order of voxels by uncertainty
    # p̄ overconfident: outcomes at p̄ = 0.9 come true 70 % of the time, the head learns to soften it
    n = 4096
    stats = torch.zeros(n, 3, 6, 1, 1)
    stats[:, :, 0] = 0.9
    targets = (torch.rand(n, 3, 1, 1, generator=torch.Generator().manual_seed(0)) < 0.7).float()
    head = CalibrationHead()
    train_calibration(
        head, stats, targets, torch.ones(n, 1, 1), TrainConfig(calibration_iterations=600), DistributedContext()
    )
    assert torch.sigmoid(head(stats[:1]))[0, :, 0, 0].detach() == pytest.approx([0.7] * 3, abs=0.05)
