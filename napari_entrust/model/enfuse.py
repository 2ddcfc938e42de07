"""EnFuse: per-modality features → modality weights, consensus, specific and conflict features.

Per modality m a MONAI UNet encodes a few neighbouring 2-D slices into features f_m. EnFuse turns
them into per-pixel modality weights w_m, consensus F_c = Σ w_m P_c(f_m), specific features
F_u,m = P_u(f_m) and a conflict map F_cf = Φ(Σ_m w_m (P_c(f_m) − F_c)²). Auxiliary heads read
P_c(f_m) ("what modality m says") and F_c, which gives the projections a meaning and the engine a
cheap map of where the tumour can be. With ``conflict_target_weight`` > 0 a conflict head reads F_cf
and learns where the raters disagree (the generator's disagreement events), so F_cf carries that
signal by construction and the conflict layer is a probability a user can read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..io.labels import REGIONS
from .channels import channel_map, channel_norm, pointwise
from .config import ModelConfig


@dataclass
class Features:
    """EnFuse outputs for a batch of slices (B = slices)."""

    weights: torch.Tensor  #: (B, M, H, W), softmax over modalities
    consensus: torch.Tensor  #: (B, Cc, H, W)
    specific: torch.Tensor  #: (B, M, Cu, H, W)
    conflict: torch.Tensor  #: (B, Ccf, H, W)
    modality_logits: torch.Tensor | None  #: (B, M, 3, H, W); only computed in training mode
    fused_logits: torch.Tensor  #: (B, 3, H, W)
    conflict_logits: torch.Tensor | None = None  #: (B, 1, H, W) "the modalities disagree here"; with a conflict head

    def conflict_map(self, conflict_scale: float = 1.0) -> torch.Tensor:
        """(B, H, W) what the conflict layer shows: the head's probability, or ‖F_cf‖ without a head; either
        × |scale| (F_cf as the sampler sees it: zeroed in the ablation, so the layer is too)."""
        if self.conflict_logits is None:
            return channel_norm(self.conflict) * abs(conflict_scale)
        return torch.sigmoid(self.conflict_logits[:, 0]) * min(abs(conflict_scale), 1.0)

    def condition(self, conflict_scale: float = 1.0) -> torch.Tensor:
        """The denoiser's conditioning input: F_c, every F_u,m and F_cf (scaled for probing)."""
        b, m, cu, h, w = self.specific.shape
        return torch.cat([self.consensus, self.specific.reshape(b, m * cu, h, w), self.conflict * conflict_scale], 1)


class EnFuse(nn.Module):
    """Modality weights, consensus, specific and conflict features from the per-modality features."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, cc = cfg.feature_channels, cfg.consensus_channels
        self.use_conflict = cfg.conflict_branch
        self.conflict_channels = cfg.conflict_channels
        self.gate = nn.Conv2d(c, 1, 1)
        self.project_consensus = nn.Conv2d(c, cc, 1)
        self.project_specific = nn.Conv2d(c, cfg.specific_channels, 1)
        self.phi = nn.Sequential(
            nn.Conv2d(cc, cfg.conflict_channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(cfg.conflict_channels, cfg.conflict_channels, 1),
        )
        self.modality_head = nn.Conv2d(cc, len(REGIONS), 1)
        self.fused_head = nn.Conv2d(cc, len(REGIONS), 1)
        self.conflict_head = nn.Conv2d(cfg.conflict_channels, 1, 1) if cfg.conflict_head else None

    def projections(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The 1×1 maps applied to every f_m, stacked: gate logit, P_c, P_u -> weight (1 + Cc + Cu, C), bias."""
        layers = (self.gate, self.project_consensus, self.project_specific)
        return torch.cat([p.weight[:, :, 0, 0] for p in layers]), torch.cat([p.bias for p in layers])

    def fused_logits(self, f: torch.Tensor) -> torch.Tensor:
        """The fused head's logits alone for f (B, M, C, H, W): F_c and nothing else (no conflict branch,
        no F_u,m), as :meth:`forward` computes them; explanations score thousands of occluded inputs."""
        layers = (self.gate, self.project_consensus)
        weight, bias = torch.cat([p.weight[:, :, 0, 0] for p in layers]), torch.cat([p.bias for p in layers])
        projected = channel_map(weight, bias, f)  # (B, M, 1 + Cc, H, W)
        weights = torch.softmax(projected[:, :, 0], dim=1)
        consensus = (weights[:, :, None] * projected[:, :, 1:]).sum(1)
        return pointwise(self.fused_head, consensus)

    def forward(self, f: torch.Tensor) -> Features:
        """f: (B, M, C, H, W) encoder outputs."""
        return self.fuse(channel_map(*self.projections(), f).unbind(1))

    def fuse(self, projected: Sequence[torch.Tensor]) -> Features:
        """projected: per modality (B, 1 + Cc + Cu, H, W), f_m through :meth:`projections`.

        The sums over modalities run one modality at a time on contiguous tensors (in place when no
        gradient is needed): on CPU 5-8× faster than the same arithmetic on a stacked (B, M, ...)
        tensor, whose channel slices are strided views.
        """
        cc = self.project_consensus.out_channels
        weights = torch.softmax(torch.stack([p[:, 0] for p in projected], 1), dim=1)
        in_place = not torch.is_grad_enabled()
        consensus = second = None  # Σ_m w_m P_c f_m and Σ_m w_m (P_c f_m)²
        for m, p in enumerate(projected):
            proj = p[:, 1 : 1 + cc]
            weighted = weights[:, m, None] * proj
            if consensus is None:
                consensus, second = weighted, weighted * proj
            elif in_place:
                second.addcmul_(weighted, proj)
                consensus.add_(weighted)
            else:
                second, consensus = second + weighted * proj, consensus + weighted
        b, _, h, w = consensus.shape
        specific = torch.stack([p[:, 1 + cc :] for p in projected], 1)
        if self.use_conflict:
            # Σ_m w_m (P_c f_m − F_c)² = Σ_m w_m (P_c f_m)² − F_c², as Σ_m w_m = 1: two passes fewer
            dispersion = (second - consensus * consensus).clamp_min(0.0)
            conflict = pointwise(self.phi[2], self.phi[1](self.phi[0](dispersion)))  # Φ: 3×3 conv, GELU, 1×1 conv
        else:
            conflict = consensus.new_zeros(b, self.conflict_channels, h, w)
        modality_logits = None
        if self.training:  # deep supervision only; inference does not need them
            modality_logits = torch.stack([pointwise(self.modality_head, p[:, 1 : 1 + cc]) for p in projected], 1)
        conflict_logits = None if self.conflict_head is None else pointwise(self.conflict_head, conflict)
        fused_logits = pointwise(self.fused_head, consensus)
        return Features(weights, consensus, specific, conflict, modality_logits, fused_logits, conflict_logits)
