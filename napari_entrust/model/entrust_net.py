"""The EnTrust network: one MONAI UNet encoder per modality, EnFuse, and SegDiff's denoiser."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets import UNet
from torch import nn

from .channels import channel_map
from .config import ModelConfig
from .denoiser import Denoiser
from .enfuse import EnFuse, Features


def encode_projected(encoder: UNet, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``weight @ encoder(x) + bias`` per pixel, with the 1×1 map folded into the encoder's last layer
    when that layer is a bare transposed convolution (MONAI's UNet with no residual units)."""
    top = encoder.model[-1]
    conv = getattr(top, "conv", None)
    if not isinstance(conv, nn.ConvTranspose2d) or len(top) != 1:
        return channel_map(weight, bias, encoder(x))
    folded = torch.einsum("icyx,oc->ioyx", conv.weight, weight)  # ConvTranspose2d weights: (in, out, kH, kW)
    if conv.bias is not None:
        bias = weight @ conv.bias + bias
    return F.conv_transpose2d(
        encoder.model[:-1](x), folded, bias, conv.stride, conv.padding, conv.output_padding, conv.groups, conv.dilation
    )


class EnTrustNet(nn.Module):
    """The whole network: one encoder per modality, EnFuse and the denoiser (what a checkpoint holds)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        strides = (2,) * (len(cfg.encoder_channels) - 1)
        self.encoders = nn.ModuleList(
            UNet(
                spatial_dims=2,
                in_channels=cfg.in_slices,
                out_channels=cfg.feature_channels,
                channels=cfg.encoder_channels,
                strides=strides,
                num_res_units=cfg.encoder_res_units,
            )
            for _ in cfg.modalities
        )
        self.enfuse = EnFuse(cfg)
        cond = cfg.consensus_channels + len(cfg.modalities) * cfg.specific_channels + cfg.conflict_channels
        self.denoiser = Denoiser(cfg, cond)

    @property
    def size_multiple(self) -> int:
        """Slices must have height and width divisible by this (encoder down-sampling)."""
        return 2 ** (len(self.cfg.encoder_channels) - 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, M, context slices, H, W) normalised intensities -> f: (B, M, C, H, W)."""
        return torch.stack([enc(x[:, i]) for i, enc in enumerate(self.encoders)], dim=1)

    def features(self, x: torch.Tensor) -> Features:
        """x: (B, M, context slices, H, W) -> EnFuse features; the same as ``enfuse(encode(x))``.

        EnFuse's first step is linear in f_m (gate, P_c, P_u), and so is each encoder's last layer
        (a bare transposed convolution), so the two are composed into one layer and the
        full-resolution f_m is never formed (a tenth of the engine's encoding time on CPU).
        """
        weight, bias = self.enfuse.projections()
        return self.enfuse.fuse([encode_projected(enc, x[:, i], weight, bias) for i, enc in enumerate(self.encoders)])

    def forward(self, x: torch.Tensor, y_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, Features]:
        """Training pass: one noisy mask per slice."""
        feats = self.features(x)
        return self.denoiser(y_t, t, self.denoiser.condition(feats.condition())), feats
