"""Fitting the TrustMap's calibration head on held-out cases, with the backbone frozen.

The statistics come from K hypotheses drawn on crops of the calibration cases, a fresh rater per
batch, so the head learns how often the raters' answers come true at each p̄.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..inference.distributed import DistributedContext
from ..model.channels import channel_norm
from ..model.entrust_net import EnTrustNet
from ..model.segdiff import Schedule, sample, slice_noise
from ..model.trustmap import CalibrationHead, trust_statistics
from ..progress import Steps
from .cases import AnyCase
from .crops import CropSampler
from .train_config import TrainConfig


@torch.no_grad()
def calibration_statistics(
    net: EnTrustNet,
    cases: list[AnyCase],
    tc: TrainConfig,
    ctx: DistributedContext,
) -> Steps[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """TrustMap inputs and rater targets on crops of the calibration cases (backbone frozen); yields progress."""
    schedule = Schedule(net.cfg)
    sampler = CropSampler(
        cases,
        net.cfg.context,
        tc.crop,
        lesion_fraction=0.6,
        conflict_fraction=0.3,
        seed=tc.seed * 1000 + 500 + ctx.rank,
        augment=False,
    )
    stats, targets, masks = [], [], []
    batch = 4
    n_batches = max(1, tc.calibration_slices // (batch * ctx.world))
    for i in range(n_batches):
        sampler.new_epoch()  # a fresh rater for every batch: the head learns the raters' spread
        x, y, brain, _ = sampler.batch(batch).to(ctx.device)
        feats = net.features(x)
        noise = torch.stack(
            [
                slice_noise(
                    tc.seed + ctx.rank, i * batch + j, tc.calibration_steps, tc.calibration_samples, tuple(x.shape[-2:])
                )
                for j in range(batch)
            ]
        )
        hyp = sample(net, schedule, feats.condition(), noise, probe_strength=tc.probe_strength, probe_steps=2)
        stats.append(
            trust_statistics(
                hyp.probs,
                hyp.probe_plus,
                hyp.probe_minus,
                channel_norm(feats.conflict),
                tc.probe_strength,
                hyp.first_step,
            ).cpu()
        )
        targets.append(y.cpu())
        masks.append(brain.cpu())
        if ctx.main:
            yield (i + 1) / n_batches, f"calibration statistics {i + 1}/{n_batches}"
    return torch.cat(stats), torch.cat(targets), torch.cat(masks)


def train_calibration(
    head: CalibrationHead,
    stats: torch.Tensor,
    targets: torch.Tensor,
    masks: torch.Tensor,
    tc: TrainConfig,
    ctx: DistributedContext,
) -> list[float]:
    """Fit the calibration head (BCE inside the brain) on all precomputed statistics at once.

    The head has a few parameters per region, so full-batch steps converge in a few hundred
    iterations and the fit does not depend on which crops a minibatch happened to draw.
    """
    model = head.to(ctx.device).train()
    if ctx.world > 1:
        model = DistributedDataParallel(head)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    s, y, m = stats.to(ctx.device), targets.to(ctx.device), masks.to(ctx.device)
    weight = m[:, None].expand_as(y) / (3 * m.sum() + 1)
    losses = []
    for _ in range(tc.calibration_iterations):
        loss = F.binary_cross_entropy_with_logits(model(s), y, weight=weight, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    head.eval()
    return losses
