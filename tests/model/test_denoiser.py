"""SegDiff's denoiser: the fast sampling path equals the training path; what it is conditioned on."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from napari_entrust.model.entrust_net import EnTrustNet
from tests.helpers import TINY


def test_denoiser_sampling_path_equals_the_training_path(tiny):
    """In sampling (one time step for the batch, no gradient) FiLM is folded into the norm and the
    activation runs in place; the logits must be those of the per-sample training path."""
    g = torch.Generator().manual_seed(3)
    cond_h = tiny.net.denoiser.condition(torch.randn(6, tiny.net.denoiser.cond_in.in_channels, 12, 16, generator=g))
    y = torch.randn(6, 3, 12, 16, generator=g)
    with torch.no_grad():
        fast = tiny.net.denoiser(y, torch.tensor([417]), cond_h)
    with torch.enable_grad():
        slow = tiny.net.denoiser(y, torch.full((6,), 417), cond_h)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sees_specific", [True, False])
def test_denoiser_sees_the_specific_features_only_when_configured(sees_specific):
    torch.manual_seed(2)
    cfg = replace(TINY, denoiser_sees_specific=sees_specific)
    net = EnTrustNet(cfg).eval()
    cond = torch.randn(2, net.denoiser.cond_in.in_channels, 8, 8)
    changed = cond.clone()
    changed[:, cfg.consensus_channels : -cfg.conflict_channels] += 5.0  # only the F_u,m channels
    y = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out, out_changed = (net.denoiser(y, torch.tensor([500]), net.denoiser.condition(c)) for c in (cond, changed))
    assert torch.equal(out, out_changed) != sees_specific
    cf = cond.clone()
    cf[:, -cfg.conflict_channels :] += 5.0  # F_cf reaches the denoiser either way
    with torch.no_grad():
        assert not torch.equal(out, net.denoiser(y, torch.tensor([500]), net.denoiser.condition(cf)))
