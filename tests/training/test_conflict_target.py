"""The conflict target: crops say where raters disagree, and a conflict head learns to find it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from napari_entrust.model.entrust_net import EnTrustNet
from napari_entrust.training.backbone import conflict_target_loss
from napari_entrust.training.cases import TrainingCase
from napari_entrust.training.crops import NO_RATERS, CropSampler
from tests.helpers import TINY


def coordinate_case(n_raters: int) -> TrainingCase:
    """A case whose first three images are the voxel's x, y, z (+1), so a crop says where it was cut."""
    shape = (40, 36, 12)
    grid = np.indices(shape).astype(np.float32) + 1
    images = np.concatenate([grid, np.ones((1, *shape), np.float32)])
    labels = np.zeros(shape, np.uint8)
    labels[10:24, 8:20, 3:9] = 2
    raters = np.repeat(labels[None], n_raters, 0)
    if n_raters > 1:
        raters[1, 20:28, 14:22, 4:8] = 1  # the second rater adds a region the first leaves out
    return TrainingCase(f"coords-{n_raters}", images, raters, {m: (0.0, 1.0) for m in ("t1", "t1ce", "t2", "flair")})


def test_each_crop_marks_exactly_the_pixels_where_its_case_raters_disagree():
    case = coordinate_case(2)
    disputed = case.raters.min(0) != case.raters.max(0)
    sampler = CropSampler([case], 1, 16, conflict_fraction=0.6, seed=3, augment=False)
    crops = sampler.batch(12)
    assert crops.disputed.sum() > 0  # crops are drawn on the disputed region on purpose
    for i in range(12):
        x, y, z = (crops.x[i, m, 1].long() - 1 for m in range(3))  # centre slice: each pixel's coordinates
        inside = crops.brain[i]
        expected = torch.from_numpy(disputed)[x[inside], y[inside], z[inside]].float()
        torch.testing.assert_close(crops.disputed[i][inside], expected)


def test_a_case_with_one_rater_says_nothing_of_disagreement():
    crops = CropSampler([coordinate_case(1)], 1, 16, seed=0).batch(4)
    assert bool((crops.disputed == NO_RATERS).all())


def test_the_conflict_loss_ranks_disputed_pixels_and_leaves_unknown_ones_out():
    disputed = torch.zeros(2, 8, 8)
    disputed[0, 2:4, 2:4] = 1
    disputed[1] = NO_RATERS
    brain = torch.ones(2, 8, 8, dtype=torch.bool)
    right = (disputed * 2 - 1) * 4.0  # confident and right where it is known
    assert conflict_target_loss(right, disputed, brain) < 0.05
    assert conflict_target_loss(-right, disputed, brain) > 2.0
    # the rare disputed class weighs as much as the rest: missing it costs as much as false alarms everywhere
    miss = torch.full_like(disputed, -4.0)
    alarm = torch.full_like(disputed, 4.0)
    missed, false_alarms = conflict_target_loss(miss, disputed, brain), conflict_target_loss(alarm, disputed, brain)
    torch.testing.assert_close(missed, false_alarms)
    nothing = torch.full_like(disputed, NO_RATERS)
    logits = torch.randn(2, 8, 8, requires_grad=True)
    loss = conflict_target_loss(logits, nothing, brain)
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


def test_the_conflict_layer_is_the_head_probability_and_zero_when_f_cf_is_zeroed():
    torch.manual_seed(0)
    x = torch.randn(2, 4, TINY.in_slices, 16, 16)
    with_head = EnTrustNet(replace(TINY, conflict_target_weight=1.0)).eval()
    plain = EnTrustNet(TINY).eval()
    with torch.no_grad():
        f, g = with_head.features(x), plain.features(x)
    assert f.conflict_logits is not None and g.conflict_logits is None
    torch.testing.assert_close(f.conflict_map(), torch.sigmoid(with_head.enfuse.conflict_head(f.conflict))[:, 0])
    assert float(f.conflict_map(0.0).abs().max()) == 0.0  # the ablation's layer
    torch.testing.assert_close(g.conflict_map(), g.conflict.norm(dim=1))
    assert "enfuse.conflict_head.weight" not in plain.state_dict()  # older checkpoints still load
