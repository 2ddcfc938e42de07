"""EnFuse as the design writes it: weights, consensus, specific and conflict features."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from napari_entrust.model.entrust_net import EnTrustNet
from tests.helpers import TINY


def test_enfuse_weights_are_a_distribution_and_conflict_is_flat_where_modalities_agree(tiny):
    f = torch.randn(1, 1, TINY.feature_channels, 8, 8).expand(1, 4, -1, -1, -1).contiguous()
    with torch.no_grad():
        feats = tiny.net.enfuse(f)
    torch.testing.assert_close(feats.weights.sum(1), torch.ones(1, 8, 8))
    # identical modalities: no dispersion, so F_cf carries no spatial structure
    assert torch.allclose(feats.conflict, feats.conflict[..., :1, :1].expand_as(feats.conflict), atol=1e-6)
    f2 = f.clone()
    f2[:, 3, :, 2:5, 2:5] += 3.0  # one modality disagrees in a square
    with torch.no_grad():
        feats2 = tiny.net.enfuse(f2)
    change = (feats2.conflict - feats.conflict).norm(dim=1)[0]
    assert change[2:5, 2:5].mean() > 10 * change[6:, 6:].mean()


@pytest.mark.parametrize("res_units", [0, 1])
def test_features_are_enfuse_of_the_encoders_as_the_design_writes_it(res_units):
    """The engine's path (EnFuse's 1×1 maps folded into each encoder's last layer, the dispersion as
    Σ w p² − F_c²) gives what the design states, computed here step by step from the encoders' f_m.
    With residual units the last layer is not linear and the plain path is taken."""
    torch.manual_seed(1)
    net = EnTrustNet(replace(TINY, encoder_res_units=res_units)).eval()
    ef = net.enfuse
    x = torch.randn(2, 4, TINY.in_slices, 16, 24)

    def conv(layer, t):
        return torch.nn.functional.conv2d(t, layer.weight, layer.bias)

    with torch.enable_grad():  # training: sums out of place, for autograd
        trained = net.features(x)
    with torch.no_grad():
        got = net.features(x)
        f = [enc(x[:, m]) for m, enc in enumerate(net.encoders)]
        w = torch.softmax(torch.cat([conv(ef.gate, fm) for fm in f], 1), 1)
        proj = [conv(ef.project_consensus, fm) for fm in f]
        consensus = sum(w[:, m : m + 1] * proj[m] for m in range(4))
        dispersion = sum(w[:, m : m + 1] * (proj[m] - consensus) ** 2 for m in range(4))
        specific = torch.stack([conv(ef.project_specific, fm) for fm in f], 1)
    for name, want in (
        ("weights", w),
        ("consensus", consensus),
        ("specific", specific),
        ("conflict", ef.phi(dispersion)),
        ("fused_logits", conv(ef.fused_head, consensus)),
    ):
        torch.testing.assert_close(getattr(got, name), want, atol=1e-4, rtol=1e-4, msg=name)
        torch.testing.assert_close(getattr(trained, name).detach(), want, atol=1e-4, rtol=1e-4, msg=name)


def test_the_fused_head_alone_gives_what_the_whole_enfuse_gives(tiny):
    # explanations score thousands of occluded inputs through this shorter path
    enfuse = tiny.net.enfuse.eval()
    f = torch.randn(3, len(tiny.config.modalities), enfuse.gate.in_channels, 24, 20)
    with torch.inference_mode():
        torch.testing.assert_close(enfuse.fused_logits(f), enfuse(f).fused_logits)
