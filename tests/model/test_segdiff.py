"""SegDiff sampling: seeded hypotheses independent of batching, inpainting, probing, Cancel."""

from __future__ import annotations

import pytest
import torch

from napari_entrust.errors import Cancelled
from napari_entrust.model.segdiff import sample, slice_noise
from napari_entrust.model.trustmap import trust_statistics
from tests.helpers import TINY


def _cond(bundle, b=2, h=12, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((b, 4, TINY.in_slices, h, w), generator=g)
    with torch.no_grad():
        return bundle.net.features(x).condition()


def _noise(seed, zs, steps, k, shape):
    return torch.stack([slice_noise(seed, z, steps, k, shape) for z in zs])


def test_hypotheses_are_seeded_and_independent_of_batching(tiny):
    cond = _cond(tiny)
    both = sample(tiny.net, tiny.schedule, cond, _noise(3, [0, 1], 5, 4, (12, 16)))
    alone = sample(tiny.net, tiny.schedule, cond[1:], _noise(3, [1], 5, 4, (12, 16)))
    torch.testing.assert_close(both.probs[1:], alone.probs)
    again = sample(tiny.net, tiny.schedule, cond, _noise(3, [0, 1], 5, 4, (12, 16)))
    torch.testing.assert_close(both.probs, again.probs)
    other = sample(tiny.net, tiny.schedule, cond, _noise(4, [0, 1], 5, 4, (12, 16)))
    assert not torch.allclose(both.probs, other.probs)
    assert both.probs.shape == (2, 4, 3, 12, 16)
    assert not torch.allclose(both.probs[:, 0], both.probs[:, 1])  # K hypotheses differ


def test_known_voxels_are_held_fixed_in_every_hypothesis(tiny):
    cond = _cond(tiny)
    g = torch.Generator().manual_seed(1)
    known = torch.rand((2, 3, 12, 16), generator=g) < 0.3
    values = (torch.rand((2, 3, 12, 16), generator=g) < 0.5).float()
    hyp = sample(tiny.net, tiny.schedule, cond, _noise(0, [0, 1], 6, 5, (12, 16)), known=known, known_values=values)
    fixed = hyp.probs.permute(1, 0, 2, 3, 4)[:, known]
    assert torch.equal(fixed, values[known].expand_as(fixed))
    # next to fixed voxels p̄'s first-step term is the hypotheses' mean: the first step, from noise, has
    # not seen the fixed values
    torch.testing.assert_close(hyp.first_step, hyp.probs.mean(1))


def test_probing_and_cancellation(tiny):
    cond = _cond(tiny)
    hyp = sample(tiny.net, tiny.schedule, cond, _noise(0, [0, 1], 6, 3, (12, 16)), probe_strength=0.5, probe_steps=2)
    assert hyp.probe_plus.shape == (2, 3, 12, 16) and not torch.allclose(hyp.probe_plus, hyp.probe_minus)
    plain = sample(tiny.net, tiny.schedule, cond, _noise(0, [0, 1], 6, 3, (12, 16)))
    assert plain.probe_plus is None
    calls = []
    with pytest.raises(Cancelled):
        sample(
            tiny.net,
            tiny.schedule,
            cond,
            _noise(0, [0, 1], 6, 3, (12, 16)),
            should_stop=lambda: calls.append(1) or len(calls) > 2,
        )
    assert len(calls) == 3  # stopped at the third step, not at the end


def test_first_step_prediction_is_the_noise_free_part_of_the_hypotheses_mean(tiny):
    """p̄'s first-step term depends on the starting noise only, never on the noise of later steps."""
    cond = _cond(tiny)
    noise = _noise(0, [0, 1], 6, 4, (12, 16))
    hyp = sample(tiny.net, tiny.schedule, cond, noise, probe_strength=0.5, probe_steps=2)
    later = noise.clone()
    later[:, 2:] = _noise(9, [0, 1], 6, 4, (12, 16))[:, 2:]
    other = sample(tiny.net, tiny.schedule, cond, later, probe_strength=0.5, probe_steps=2)
    torch.testing.assert_close(hyp.first_step, other.first_step)
    assert not torch.allclose(hyp.probs, other.probs)
    one_step = sample(tiny.net, tiny.schedule, cond, noise[:, :2])  # the first step is the last
    torch.testing.assert_close(one_step.first_step, one_step.probs.mean(1))
    cf = torch.zeros((2, 12, 16))
    stats = trust_statistics(hyp.probs, hyp.probe_plus, hyp.probe_minus, cf, 0.5, hyp.first_step)
    torch.testing.assert_close(stats[:, :, 0], (hyp.probs.mean(1) + hyp.first_step) / 2)
