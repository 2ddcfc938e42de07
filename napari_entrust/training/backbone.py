"""Training EnFuse and SegDiff together: what the backbone's loss is made of."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..inference.distributed import DistributedContext
from ..model.entrust_net import EnTrustNet
from ..model.segdiff import Schedule, to_signed
from ..progress import Steps
from .cases import AnyCase
from .crops import NO_RATERS
from .independence import independence_loss
from .loop import optimise
from .train_config import TrainConfig


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits: a proper scoring rule, so disputed voxels are learned as ~50/50."""
    return F.binary_cross_entropy_with_logits(logits, target)


def conflict_target_loss(logits: torch.Tensor, disputed: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """BCE of the conflict head against "the raters disagree here", inside the head, over crops whose
    case has several raters (a single rater says nothing of disagreement). Disputed pixels are rare,
    so both classes are weighted equally (what AUROC, and a user scanning the layer, care about)."""
    known = brain & (disputed != NO_RATERS)
    if not known.any():
        return logits.sum() * 0.0  # keeps the graph (DistributedDataParallel) when no crop has raters
    target, z = disputed[known], logits[known]
    positive = target.mean().clamp(1e-3, 1 - 1e-3)
    weight = torch.where(target > 0, 0.5 / positive, 0.5 / (1 - positive))
    return F.binary_cross_entropy_with_logits(z, target, weight=weight)


def train_backbone(
    net: EnTrustNet, cases: list[AnyCase], tc: TrainConfig, ctx: DistributedContext
) -> Steps[list[dict]]:
    """Diffusion (x0, BCE) loss + deep supervision of the modality/fused heads + independence loss
    (+ the conflict target, with a conflict head)."""
    cfg = net.cfg
    schedule = Schedule(cfg)

    def loss_fn(model, crops, gen):
        x, y, brain = crops.x, crops.y, crops.brain
        t = torch.randint(0, cfg.train_timesteps, (x.shape[0],), generator=gen).to(ctx.device)
        noise = torch.randn(y.shape, generator=gen).to(ctx.device)
        y_t = schedule.add_noise(to_signed(y), noise, t)
        logits, feats = model(x, y_t, t)
        # BCE only: a proper scoring rule, so voxels the raters dispute are learned as ~50/50, not
        # pushed to the majority answer as an overlap (Dice) loss would do
        loss_diff = bce(logits, y)
        loss_aux = bce(feats.fused_logits, y) + bce(feats.modality_logits, y[:, None].expand_as(feats.modality_logits))
        loss_ind = independence_loss(feats, brain, cfg.independence, generator=gen)
        loss = loss_diff + cfg.aux_weight * loss_aux + cfg.independence_weight * loss_ind
        parts = {"diffusion": loss_diff.item(), "aux": loss_aux.item(), "independence": loss_ind.item()}
        if feats.conflict_logits is not None:
            loss_cf = conflict_target_loss(feats.conflict_logits[:, 0], crops.disputed, brain)
            loss = loss + cfg.conflict_target_weight * loss_cf
            parts["conflict"] = loss_cf.item()
        return loss, parts

    return (
        yield from optimise(
            net, loss_fn, cases, cfg.context, tc, ctx, find_unused_parameters=not cfg.conflict_branch, label="backbone"
        )
    )
