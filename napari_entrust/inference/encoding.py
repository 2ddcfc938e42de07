"""Encoding: each modality's encoder and EnFuse, once per slice of the head, under a memory budget.

Only the head's in-plane box is encoded (everything else stays 0). What comes out is kept on the
model grid: the fused head's WT probability (for the region of interest), the feature maps users
see (‖F_c‖, the conflict map, ‖F_u,m‖, w_m), the denoiser's conditioning for every slice, and the pooled
features the input-validity check compares with training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model.channels import channel_norm
from ..model.checkpoint import ModelBundle
from ..model.config import SamplingConfig
from ..progress import ShouldStop, Steps, stop_if_asked
from . import validity
from .slices import encoder_input, head_box, head_voxels


@dataclass
class Encoding:
    """EnFuse's outputs for a volume, on the model grid (X, Y, Z)."""

    fused_wt: np.ndarray  #: the fused head's WT probability
    consensus: np.ndarray  #: ‖F_c‖
    conflict: np.ndarray  #: the conflict layer (:meth:`Features.conflict_map`)
    specific: np.ndarray  #: (M, X, Y, Z) ‖F_u,m‖
    weights: np.ndarray  #: (M, X, Y, Z) w_m
    cond: torch.Tensor  #: (slices, C, hx, hy) the denoiser's conditioning on the head's box, from cond_start
    box: tuple[slice, slice]  #: that box
    head: np.ndarray  #: bool head mask
    pooled: torch.Tensor  #: (slices, C) mean features of the slices with enough head (input validity)
    cond_start: int = 0  #: the first slice ``cond`` holds (slices without head have no conditioning)


def slices_per_chunk(bytes_per_slice: float, memory_mb: float) -> int:
    """How many slices fit in the memory budget (at least one)."""
    return max(1, int(memory_mb * 2**20 // max(bytes_per_slice, 1)))


def encode_volume(
    volume: torch.Tensor,
    bundle: ModelBundle,
    sampling: SamplingConfig,
    *,
    memory_mb: float,
    should_stop: ShouldStop | None = None,
) -> Steps[Encoding]:
    """Encoders + EnFuse for every head slice of a normalised (M, X, Y, Z) volume; yields progress."""
    cfg, net = bundle.config, bundle.net
    device = next(net.parameters()).device
    grid = tuple(volume.shape[1:])
    nz, m = grid[2], len(cfg.modalities)
    n_cond = cfg.consensus_channels + m * cfg.specific_channels + cfg.conflict_channels
    maps = {k: np.zeros(grid, np.float32) for k in ("fused_wt", "consensus", "conflict")}
    specific, weights = np.zeros((m, *grid), np.float32), np.zeros((m, *grid), np.float32)
    head_3d, head_slices = head_voxels(volume)
    bx, by = head_box(head_3d)  # only the head is encoded; everything else stays 0
    hx, hy = bx.stop - bx.start, by.stop - by.start
    # the denoiser's conditioning, on the head's box and its slices only (a quarter of the method's
    # peak tensor memory on a 2 mm case: every slice is kept for the sampler)
    z0 = head_slices[0] if head_slices else 0
    cond = torch.zeros((head_slices[-1] + 1 - z0 if head_slices else 0, n_cond, hx, hy))
    per_slice = hx * hy * 4 * (m * cfg.in_slices + m * sum(cfg.encoder_channels) * 6 + n_cond * 2)
    chunk = slices_per_chunk(per_slice, memory_mb)
    pooled = []  # per-slice mean EnFuse features, for the input-validity check

    def unpad(a: torch.Tensor) -> np.ndarray:  # (B, ..., H, W) -> (..., hx, hy, B) without padding
        return np.moveaxis(a[..., :hx, :hy].float().cpu().numpy(), 0, -1)

    with torch.inference_mode():
        for i in range(0, len(head_slices), chunk):
            stop_if_asked(should_stop)
            zs = head_slices[i : i + chunk]
            # consecutive slices as a slice: numpy and torch copy into a view, not by fancy indexing
            zi = slice(zs[0], zs[-1] + 1) if zs[-1] - zs[0] + 1 == len(zs) else zs
            f = net.features(encoder_input(volume, zs, cfg.context, (bx, by), net.size_multiple).to(device))
            condition = f.condition(sampling.conflict_scale)[..., :hx, :hy].float().cpu()
            rows = slice(zs[0] - z0, zs[-1] + 1 - z0) if isinstance(zi, slice) else [z - z0 for z in zs]
            cond[rows] = condition  # cond starts at the first head slice
            if bundle.validity:
                full = condition if sampling.conflict_scale == 1 else f.condition()[..., :hx, :hy].float().cpu()
                pooled.append(validity.pooled_features(full, head_3d[bx, by][..., zs].permute(2, 0, 1)))
            maps["fused_wt"][bx, by, zi] = unpad(torch.sigmoid(f.fused_logits[:, 0]))
            maps["consensus"][bx, by, zi] = unpad(channel_norm(f.consensus))
            maps["conflict"][bx, by, zi] = unpad(f.conflict_map(sampling.conflict_scale))
            specific[:, bx, by, zi] = unpad(channel_norm(f.specific, 2))
            weights[:, bx, by, zi] = unpad(f.weights)
            yield (i + len(zs)) / len(head_slices), f"encoding slices {zs[0] + 1}-{zs[-1] + 1} of {nz}"
    head = head_3d.numpy()
    for a in (maps["consensus"], maps["conflict"], specific, weights):  # features of the background mean nothing
        a *= head
    return Encoding(
        maps["fused_wt"],
        maps["consensus"],
        maps["conflict"],
        specific,
        weights,
        cond,
        (bx, by),
        head,
        torch.cat(pooled) if pooled else torch.zeros((0, n_cond)),
        cond_start=z0,
    )
