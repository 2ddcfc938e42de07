"""The training loop every model here shares: the same crops, augmentation, optimiser and budget.

Sharing it is what makes the benchmark's baselines "trained like EnTrust". Runs in one process or
under ``torchrun --nproc_per_node N`` with DistributedDataParallel (``gloo`` on CPU, ``nccl`` on
GPU): each rank draws its own crops from its share of the cases and gradients are averaged.
Crops are cut in this process or, with ``workers``, by DataLoader processes (:mod:`.crop_loader`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..inference.distributed import DistributedContext
from ..progress import Steps
from .cases import AnyCase
from .crop_loader import CropBatches, crop_batches, rank_share
from .crops import Crops
from .train_config import TrainConfig

log = logging.getLogger(__name__)


LossFn = Callable[[torch.nn.Module, Crops, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


def optimise(
    net: torch.nn.Module,
    loss_fn: LossFn,
    cases: list[AnyCase],
    context: int,
    tc: TrainConfig,
    ctx: DistributedContext,
    *,
    find_unused_parameters: bool = False,
    label: str = "training",
) -> Steps[list[dict]]:
    """Train ``net`` for ``tc.iterations`` steps; yields progress (on rank 0), returns the loss history.

    ``loss_fn(model, crops, generator)`` returns the loss and its named parts (for the log).
    """
    dataset = CropBatches(
        rank_share(cases, ctx.rank, ctx.world, tc.seed),
        tc.batch_size,
        tc.iterations_per_epoch,
        tc.seed * 1000 + ctx.rank,
        context=context,
        crop=tc.crop,
        lesion_fraction=tc.lesion_fraction,
        conflict_fraction=tc.conflict_fraction,
        augment=tc.augment,
    )
    batches = crop_batches(dataset, tc.workers)
    model = net.to(ctx.device).train()
    if ctx.world > 1:
        model = DistributedDataParallel(net, find_unused_parameters=find_unused_parameters)
    opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=tc.iterations, pct_start=0.1)
    gen = torch.Generator().manual_seed(tc.seed * 7919 + ctx.rank)
    history, running, start = [], [], time.perf_counter()
    for it in range(tc.iterations):
        loss, parts = loss_fn(model, Crops(*next(batches)).to(ctx.device), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append({"loss": loss.item(), **parts})
        if (it + 1) % tc.log_every == 0 or it + 1 == tc.iterations:
            entry = {
                "iteration": it + 1,
                **{k: float(np.mean([r[k] for r in running])) for k in running[0]},
                "seconds": round(time.perf_counter() - start, 1),
            }
            running = []
            history.append(entry)
            if ctx.main:
                log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
        if ctx.main:
            yield (it + 1) / tc.iterations, f"{label} {it + 1}/{tc.iterations} loss {loss.item():.3f}"
    net.eval()
    return history
