"""Training a model end to end: the backbone, then the calibration head with the backbone frozen.

Rank 0 of a ``torchrun`` job writes the checkpoint, with what it stores about its data: the
intensity summary and the input-validity statistics (:func:`checkpoint_statistics`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import torch

from ..inference.distributed import DistributedContext, distributed_context
from ..inference.validity import fit_validity
from ..io.modalities import MODALITIES
from ..model.config import ModelConfig
from ..model.entrust_net import EnTrustNet
from ..model.trustmap import CalibrationHead
from ..progress import Steps, rescaled
from .backbone import train_backbone
from .calibration import calibration_statistics, train_calibration
from .cases import AnyCase
from .train_config import TrainConfig

log = logging.getLogger(__name__)
BACKBONE_SHARE = 0.9  #: of the progress bar, for the backbone (the calibration statistics take the rest)


class CaseImages(Sequence):
    """The cases' images, each read when it is asked for (a stored case is not held in memory)."""

    def __init__(self, cases: list[AnyCase]):
        self.cases = cases

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.cases[i].images


def intensity_summary(cases: list[AnyCase]) -> dict:
    """Per-modality spread of the normalisation statistics seen in training (for input checks)."""
    out = {}
    for i, m in enumerate(MODALITIES):
        lows = np.array([c.stats[m][0] for c in cases])
        highs = np.array([c.stats[m][1] for c in cases])
        inside = np.concatenate([c.images[i][c.images[i] != 0][::97] for c in cases])
        hist, edges = np.histogram(inside, bins=32, range=(-0.5, 2.0), density=True)
        out[m] = {
            "low_mean": float(lows.mean()),
            "low_std": float(lows.std()),
            "high_mean": float(highs.mean()),
            "high_std": float(highs.std()),
            "histogram": hist.tolist(),
            "histogram_edges": edges.tolist(),
        }
    return out


def checkpoint_statistics(net: EnTrustNet, train_cases: list[AnyCase], reference_cases: list[AnyCase]) -> Steps[dict]:
    """What a checkpoint stores about its data: intensity summary and input-validity statistics."""
    validity = yield from fit_validity(net, CaseImages(train_cases), CaseImages(reference_cases), net.cfg.modalities)
    return {"intensity_stats": intensity_summary(train_cases), "validity": validity}


def _initial_model(model_cfg: ModelConfig, init: dict | None, backbone: bool) -> tuple[EnTrustNet, CalibrationHead]:
    net, head = EnTrustNet(model_cfg), CalibrationHead()
    if init is not None:
        missing, unexpected = net.load_state_dict(init["net"], strict=False)
        new = [k for k in missing if not k.startswith("enfuse.conflict_head.")]  # a conflict head may be added
        if new or unexpected:
            raise ValueError(f"the initial model does not fit this architecture ({', '.join(new + unexpected)})")
        if backbone:  # fine-tuning continues from the old head; recalibration refits it from scratch
            head.load_state_dict(init["calibration"])
    elif not backbone:
        raise ValueError("refitting only the calibration head needs an initial model")
    return net, head


def _fit_head(
    net: EnTrustNet,
    head: CalibrationHead,
    cases: list[AnyCase],
    tc: TrainConfig,
    ctx: DistributedContext,
    start: float,
) -> Steps[list[float]]:
    """The calibration head on the calibration cases, the backbone frozen meanwhile."""
    for p in net.parameters():
        p.requires_grad_(False)
    stats, targets, masks = yield from rescaled(calibration_statistics(net, cases, tc, ctx), start, 1 - start)
    losses = train_calibration(head, stats, targets, masks, tc, ctx)
    for p in net.parameters():
        p.requires_grad_(True)
    return losses


def train(
    model_cfg: ModelConfig,
    tc: TrainConfig,
    train_cases: list[AnyCase],
    calibration_cases: list[AnyCase],
    *,
    device: torch.device,
    init: dict | None = None,
    backbone: bool = True,
) -> Steps[tuple[EnTrustNet, CalibrationHead, dict, DistributedContext]]:
    """Train a model; yields progress, returns (net, calibration head, training record, distributed context).

    ``init``: ``{"net": state dict, "calibration": state dict}`` to start from (fine-tuning).
    ``backbone=False`` keeps the backbone of ``init`` and fits a new calibration head (recalibration
    on a new site's cases).
    """
    ctx = distributed_context(device)
    torch.manual_seed(tc.seed)
    net, head = _initial_model(model_cfg, init, backbone)
    start = time.perf_counter()
    with torch.enable_grad():  # whatever the caller set globally (e.g. after inference in the same process)
        history = []
        if backbone:
            history = yield from rescaled(train_backbone(net, train_cases, tc, ctx), 0.0, BACKBONE_SHARE)
        backbone_s = time.perf_counter() - start
        cal_losses = yield from _fit_head(net, head, calibration_cases, tc, ctx, BACKBONE_SHARE if backbone else 0.0)
    record = {
        "train_config": asdict(tc),
        "world_size": ctx.world,
        "device": str(ctx.device),
        "train_cases": [c.name for c in train_cases] if backbone else [],
        "calibration_cases": [c.name for c in calibration_cases],
        "history": history,
        "calibration_loss_first_last": [cal_losses[0], cal_losses[-1]] if cal_losses else [],
        "calibration_slopes": head.slopes().detach().cpu().tolist(),
        "backbone_seconds": round(backbone_s, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    if ctx.main:
        log.info(f"calibration loss {cal_losses[0]:.4f} -> {cal_losses[-1]:.4f}; total {record['total_seconds']} s")
    return net, head, record, ctx
