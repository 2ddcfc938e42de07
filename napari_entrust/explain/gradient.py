"""Gradient evidence: Grad-CAM (``monai.visualize.GradCAM``) of the target logit on each modality's encoder.

A segmentation target wrapper (:class:`~.crop.TargetLogit`: the fused logit summed over the
target) makes Grad-CAM explain the same score as every other map; its stability over noisy inputs
says how far to trust it (:func:`gradient_stability`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import numpy as np
import torch

from .crop import TargetCrop, TargetLogit


def gradient_mapper(crop: TargetCrop) -> Callable[[torch.Tensor], np.ndarray]:
    """Grad-CAM of the target logit on each modality's encoder output: volume -> (M, cx, cy, cz), ≥ 0.

    MONAI's hooks are registered on a copy of the network, so the model in use stays hook-free.
    """
    from monai.visualize import GradCAM

    modalities = len(crop.cfg.modalities)
    wrapper = TargetLogit(copy.deepcopy(crop.net), crop.channel)
    cam = GradCAM(
        nn_module=wrapper, target_layers=[f"net.encoders.{m}" for m in range(modalities)], postprocessing=lambda a: a
    )
    target = crop.target_slices().to(crop.device)

    def compute(volume: torch.Tensor) -> np.ndarray:
        out = np.zeros(volume.shape, np.float32)
        x = crop.stacks(volume).to(crop.device)
        cx, cy = volume.shape[1:3]
        with torch.enable_grad(), warnings.catch_warnings():
            # MONAI's full backward hooks fire on module outputs (the inputs need no gradient): expected here
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for m in range(modalities):
                for i in range(0, len(crop.zs), crop.chunk):
                    part = cam.compute_map(
                        x[i : i + crop.chunk], class_idx=0, layer_idx=m, target=target[i : i + crop.chunk]
                    )
                    out[m][..., crop.zs[i : i + crop.chunk]] = (
                        part[:, 0, :cx, :cy].detach().cpu().numpy().transpose(1, 2, 0)
                    )
        return np.where(crop.elements, out, 0.0).astype(np.float32)

    return compute


def gradient_stability(crop: TargetCrop, draws: list[np.ndarray]) -> np.ndarray:
    """1 − min(1, coefficient of variation) of the Grad-CAM over noisy inputs, per element."""
    stack = np.stack(draws)
    mean, std = stack.mean(0), stack.std(0)
    cv = np.where(mean > 0, std / np.maximum(mean, 1e-12), 1.0)
    return np.where(crop.elements, 1 - np.minimum(cv, 1.0), 0.0)
