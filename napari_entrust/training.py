"""Training: EnFuse + SegDiff on random crops, then the calibration head with the backbone frozen.

Runs in one process or under ``torchrun --nproc_per_node N`` with DistributedDataParallel
(``gloo`` on CPU, ``nccl`` on GPU): each rank draws its own crops, gradients are averaged, rank 0
writes the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from .config import ModelConfig
from .distributed import DistributedContext, distributed_context
from .diffusion import Schedule, sample, slice_noise, to_signed
from .model import CalibrationHead, EnTrustNet, channel_norm, independence_loss
from .modalities import MODALITIES
from .training_data import CropSampler, TrainingCase
from .trust import trust_statistics

Progress = Callable[[float, str], None]


@dataclass
class TrainConfig:
    iterations: int = 3000
    batch_size: int = 16
    crop: int = 64
    lr: float = 2e-3
    iterations_per_epoch: int = 100  #: a new rater per case every epoch
    lesion_fraction: float = 0.45
    conflict_fraction: float = 0.25  #: crops centred where raters disagree (when a case has several raters)
    augment: bool = True
    seed: int = 0
    calibration_slices: int = 160
    calibration_iterations: int = 400
    calibration_samples: int = 8
    calibration_steps: int = 10
    probe_strength: float = 0.2
    log_every: int = 50


def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target)


LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator],
                  tuple[torch.Tensor, dict[str, float]]]


def optimise(net: torch.nn.Module, loss_fn: LossFn, cases: list[TrainingCase], context: int, tc: TrainConfig,
             ctx: DistributedContext, progress: Progress | None = None, log: Callable[[str], None] | None = None,
             *, find_unused_parameters: bool = False, label: str = "training") -> list[dict]:
    """The training loop every model here shares: same crops, augmentation, optimiser and budget.

    ``loss_fn(model, x, y, brain, generator)`` returns the loss and its named parts (for the log).
    Sharing it is what makes the benchmark's baselines "trained like EnTrust".
    """
    sampler = CropSampler(cases, context, tc.crop, lesion_fraction=tc.lesion_fraction,
                          conflict_fraction=tc.conflict_fraction, seed=tc.seed * 1000 + ctx.rank, augment=tc.augment)
    model = net.to(ctx.device).train()
    if ctx.world > 1:
        model = DistributedDataParallel(net, find_unused_parameters=find_unused_parameters)
    opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=tc.iterations, pct_start=0.1)
    gen = torch.Generator().manual_seed(tc.seed * 7919 + ctx.rank)
    history, running, start = [], [], time.perf_counter()
    for it in range(tc.iterations):
        if it and it % tc.iterations_per_epoch == 0:
            sampler.new_epoch()
        x, y, brain = (v.to(ctx.device) for v in sampler.batch(tc.batch_size))
        loss, parts = loss_fn(model, x, y, brain, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append({"loss": loss.item(), **parts})
        if (it + 1) % tc.log_every == 0 or it + 1 == tc.iterations:
            entry = {"iteration": it + 1, **{k: float(np.mean([r[k] for r in running])) for k in running[0]},
                     "seconds": round(time.perf_counter() - start, 1)}
            running = []
            history.append(entry)
            if log and ctx.main:
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
        if progress and ctx.main:
            progress((it + 1) / tc.iterations, f"{label} {it + 1}/{tc.iterations} loss {loss.item():.3f}")
    net.eval()
    return history


def train_backbone(net: EnTrustNet, cases: list[TrainingCase], tc: TrainConfig, ctx: DistributedContext,
                   progress: Progress | None = None, log: Callable[[str], None] | None = None) -> list[dict]:
    """Diffusion (x0, BCE) loss + deep supervision of the modality/fused heads + independence loss."""
    cfg = net.cfg
    schedule = Schedule(cfg)

    def loss_fn(model, x, y, brain, gen):
        t = torch.randint(0, cfg.train_timesteps, (x.shape[0],), generator=gen).to(ctx.device)
        noise = torch.randn(y.shape, generator=gen).to(ctx.device)
        y_t = schedule.add_noise(to_signed(y), noise, t)
        logits, feats = model(x, y_t, t)
        # BCE only: a proper scoring rule, so voxels the raters dispute are learned as ~50/50, not
        # pushed to the majority answer as an overlap (Dice) loss would do
        loss_diff = _bce(logits, y)
        loss_aux = _bce(feats.fused_logits, y) + _bce(feats.modality_logits, y[:, None].expand_as(feats.modality_logits))
        loss_ind = independence_loss(feats, brain, cfg.independence, generator=gen)
        loss = loss_diff + cfg.aux_weight * loss_aux + cfg.independence_weight * loss_ind
        return loss, {"diffusion": loss_diff.item(), "aux": loss_aux.item(), "independence": loss_ind.item()}

    return optimise(net, loss_fn, cases, cfg.context, tc, ctx, progress, log,
                    find_unused_parameters=not cfg.conflict_branch, label="backbone")


@torch.no_grad()
def calibration_statistics(net: EnTrustNet, cases: list[TrainingCase], tc: TrainConfig, ctx: DistributedContext,
                           progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TrustMap inputs and rater targets on crops of the calibration cases (backbone frozen)."""
    schedule = Schedule(net.cfg)
    sampler = CropSampler(cases, net.cfg.context, tc.crop, lesion_fraction=0.6, conflict_fraction=0.3,
                          seed=tc.seed * 1000 + 500 + ctx.rank,
                          augment=False)
    stats, targets, masks = [], [], []
    batch = 4
    n_batches = max(1, tc.calibration_slices // (batch * ctx.world))
    for i in range(n_batches):
        sampler.new_epoch()  # a fresh rater for every batch: the head learns the raters' spread
        x, y, brain = (v.to(ctx.device) for v in sampler.batch(batch))
        feats = net.features(x)
        noise = torch.stack([slice_noise(tc.seed + ctx.rank, i * batch + j, tc.calibration_steps,
                                         tc.calibration_samples, tuple(x.shape[-2:])) for j in range(batch)])
        hyp = sample(net, schedule, feats.condition(), noise, probe_strength=tc.probe_strength, probe_steps=2)
        stats.append(trust_statistics(hyp.probs, hyp.probe_plus, hyp.probe_minus,
                                      channel_norm(feats.conflict), tc.probe_strength, hyp.first_step).cpu())
        targets.append(y.cpu())
        masks.append(brain.cpu())
        if progress and ctx.main:
            progress((i + 1) / n_batches, f"calibration statistics {i + 1}/{n_batches}")
    return torch.cat(stats), torch.cat(targets), torch.cat(masks)


def train_calibration(head: CalibrationHead, stats: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor,
                      tc: TrainConfig, ctx: DistributedContext) -> list[float]:
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


def intensity_summary(cases: list[TrainingCase]) -> dict:
    """Per-modality spread of the normalisation statistics seen in training (for input checks)."""
    out = {}
    for i, m in enumerate(MODALITIES):
        lows = np.array([c.stats[m][0] for c in cases])
        highs = np.array([c.stats[m][1] for c in cases])
        inside = np.concatenate([c.images[i][c.images[i] != 0][::97] for c in cases])
        hist, edges = np.histogram(inside, bins=32, range=(-0.5, 2.0), density=True)
        out[m] = {"low_mean": float(lows.mean()), "low_std": float(lows.std()), "high_mean": float(highs.mean()),
                  "high_std": float(highs.std()), "histogram": hist.tolist(), "histogram_edges": edges.tolist()}
    return out


def checkpoint_statistics(net: EnTrustNet, train_cases: list[TrainingCase], reference_cases: list[TrainingCase],
                          progress: Progress | None = None) -> dict:
    """What a checkpoint stores about its data: intensity summary and input-validity statistics."""
    from .validity import fit_validity

    return {"intensity_stats": intensity_summary(train_cases),
            "validity": fit_validity(net, [c.images for c in train_cases], [c.images for c in reference_cases],
                                     net.cfg.modalities, progress)}


def train(model_cfg: ModelConfig, tc: TrainConfig, train_cases: list[TrainingCase],
          calibration_cases: list[TrainingCase], *, device: torch.device, init: dict | None = None,
          backbone: bool = True, progress: Progress | None = None, log: Callable[[str], None] | None = None):
    """Train a model; returns (net, calibration head, training record, distributed context).

    ``init``: ``{"net": state dict, "calibration": state dict}`` to start from (fine-tuning).
    ``backbone=False`` keeps the backbone of ``init`` and fits a new calibration head (recalibration
    on a new site's cases).
    """
    ctx = distributed_context(device)
    torch.manual_seed(tc.seed)
    net = EnTrustNet(model_cfg)
    head = CalibrationHead()
    if init is not None:
        net.load_state_dict(init["net"])
        if backbone:  # fine-tuning continues from the old head; recalibration refits it from scratch
            head.load_state_dict(init["calibration"])
    elif not backbone:
        raise ValueError("refitting only the calibration head needs an initial model")
    start = time.perf_counter()
    with torch.enable_grad():  # whatever the caller set globally (e.g. after inference in the same process)
        history = train_backbone(net, train_cases, tc, ctx, progress, log) if backbone else []
        backbone_s = time.perf_counter() - start
        for p in net.parameters():
            p.requires_grad_(False)
        stats, targets, masks = calibration_statistics(net, calibration_cases, tc, ctx, progress)
        cal_losses = train_calibration(head, stats, targets, masks, tc, ctx)
        for p in net.parameters():
            p.requires_grad_(True)
    record = {
        "train_config": asdict(tc), "world_size": ctx.world, "device": str(ctx.device),
        "train_cases": [c.name for c in train_cases] if backbone else [], "calibration_cases": [c.name for c in calibration_cases],
        "history": history, "calibration_loss_first_last": [cal_losses[0], cal_losses[-1]] if cal_losses else [],
        "calibration_slopes": head.slopes().detach().cpu().tolist(),
        "backbone_seconds": round(backbone_s, 1), "total_seconds": round(time.perf_counter() - start, 1),
    }
    if log and ctx.main:
        log(f"calibration loss {cal_losses[0]:.4f} -> {cal_losses[-1]:.4f}; total {record['total_seconds']} s")
    return net, head, record, ctx
