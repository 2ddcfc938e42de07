"""Per-pixel channel operations the networks share: norms for display and 1×1 maps as contractions."""

from __future__ import annotations

import torch
from torch import nn


def channel_norm(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Euclidean norm over a channel dimension (the F_c, F_u,m and F_cf maps users see). The same as
    ``x.norm(dim=dim)``, which on CPU is about 14× slower over a dimension that is not the last."""
    return (x * x).sum(dim).sqrt()


def channel_map(weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``weight`` (O, C) applied to the channels of ``x`` (..., C, H, W), plus ``bias`` (O,)."""
    out = torch.einsum("oc,...chw->...ohw", weight, x)
    return out if bias is None else out + bias[:, None, None]


def pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 convolution as a channel contraction: the same result, 5-10× faster than oneDNN's
    1×1 kernels on CPU for the few channels EnFuse has."""
    return channel_map(conv.weight[:, :, 0, 0], conv.bias, x)
