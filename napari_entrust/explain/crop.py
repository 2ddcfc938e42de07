"""The target score on a crop of the model grid: what every attribution map explains.

The score is the fused head's mean probability of the target's region channel over the target
voxels. The fused head reads the consensus features F_c the denoiser is conditioned on; it is
deterministic and costs one encoder pass, so a deletion curve of dozens of points is affordable
where re-sampling K hypotheses each time is not. Maps live inside a box around the target (target
+ :data:`MARGIN`), over the elements (modality, voxel) of the head; the encoders see the box plus
:data:`CROP` voxels in-plane.
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference.slices import bounding_box, context_stack, pad_to_multiple
from ..model.checkpoint import ModelBundle

MARGIN = (6, 6, 2)  #: model voxels around the target that may hold evidence
CROP = 12  #: extra in-plane voxels the encoders see around the box (their receptive field)


class TargetLogit(torch.nn.Module):
    """Segmentation target wrapper for Grad-CAM: (B, M, ctx, H, W) -> (B, 1) fused logit summed over the target."""

    def __init__(self, net: torch.nn.Module, channel: int):
        super().__init__()
        self.net = net
        self.channel = channel

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # through each encoder module (not the folded fast path of ``features``): Grad-CAM hooks them
        logits = self.net.enfuse(self.net.encode(x)).fused_logits[:, self.channel]
        return (logits * target).sum((1, 2))[:, None]


class TargetCrop:
    """The box around the target, the crop the encoders see, and the target score over it."""

    def __init__(
        self,
        volume: torch.Tensor,
        target: np.ndarray,
        head: np.ndarray,
        bundle: ModelBundle,
        channel: int,
        memory_mb: float,
    ):
        self.net, self.cfg, self.channel = bundle.net, bundle.config, channel
        self.device = next(self.net.parameters()).device
        box = bounding_box(target, 0)
        shape = target.shape
        margin = (MARGIN[0], MARGIN[1], max(MARGIN[2], self.cfg.context))
        self.box = tuple(slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, shape))
        # the encoders see the box plus CROP voxels in-plane and every context slice
        self.crop = (
            slice(max(self.box[0].start - CROP, 0), min(self.box[0].stop + CROP, shape[0])),
            slice(max(self.box[1].start - CROP, 0), min(self.box[1].stop + CROP, shape[1])),
            self.box[2],
        )  # MARGIN[2] >= context: the scored slices' neighbours are inside
        self.volume = volume[(slice(None), *self.crop)].clone()  # (M, cx, cy, cz)
        self.target = torch.from_numpy(target[self.crop].copy())
        self.zs = [z for z in range(self.target.shape[2]) if self.target[..., z].any()]  # slices scored
        #: elements that may be attributed: head voxels of the box, every modality
        inner = np.zeros(self.target.shape, bool)
        inner[tuple(slice(b.start - c.start, b.stop - c.start) for b, c in zip(self.box, self.crop))] = True
        self.elements = np.broadcast_to(inner & head[self.crop], self.volume.shape).copy()
        self.baseline = torch.tensor(
            [float(volume[m][torch.from_numpy(head)].median()) for m in range(volume.shape[0])]
        )
        per_slice = (
            4
            * self.volume.shape[1]
            * self.volume.shape[2]
            * 4
            * (self.cfg.in_slices + sum(self.cfg.encoder_channels) * 6)
        )
        self.chunk = max(1, int(memory_mb * 2**20 // per_slice))
        self._target_slices: torch.Tensor | None = None

    def stacks(self, volume: torch.Tensor) -> torch.Tensor:
        """(M, cx, cy, cz) -> padded (len(zs), M, ctx, H, W) context stacks of the scored slices."""
        x, _ = pad_to_multiple(context_stack(volume, self.zs, self.cfg.context), self.net.size_multiple)
        return x

    def target_slices(self) -> torch.Tensor:
        """(len(zs), H, W) target of the scored slices, padded like :meth:`stacks`."""
        if self._target_slices is None:
            t = self.target[..., self.zs].permute(2, 0, 1).float()
            x = self.stacks(self.volume[:, :, :, :1])
            self._target_slices = torch.nn.functional.pad(
                t, (0, x.shape[-1] - t.shape[-1], 0, x.shape[-2] - t.shape[-2])
            )
        return self._target_slices

    def scores(self, volumes: list[torch.Tensor]) -> np.ndarray:
        """Target score (mean fused probability over the target) of each modified crop volume."""
        rows = torch.arange(len(self.zs))
        total = float(self.target.sum())
        return np.asarray([float(self.contributions(self.encode(v), rows).sum()) / total for v in volumes])

    def encode(self, volume: torch.Tensor) -> torch.Tensor:
        """Each modality's encoder output for the scored slices: (slices, M, C, H, W)."""
        x = self.stacks(volume)
        parts = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], self.chunk):
                xi = x[i : i + self.chunk].to(self.device)
                parts.append(self.net.encode(xi))
        return torch.cat(parts)

    def contributions(self, f: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Σ over the target of the fused probability, per scored slice ``rows`` (encoder outputs ``f``)."""
        with torch.inference_mode():
            p = torch.sigmoid(self.net.enfuse.fused_logits(f)[:, self.channel])
            return (p * self.target_slices().to(self.device)[rows]).sum((1, 2)).float().cpu()

    def with_baseline(self, where: np.ndarray) -> torch.Tensor:
        """A copy of the crop volume with the elements ``where`` (M, cx, cy, cz) set to the healthy-tissue value."""
        v = self.volume.clone()
        w = torch.from_numpy(where)
        v[w] = self.baseline[:, None, None, None].expand_as(v)[w]
        return v
