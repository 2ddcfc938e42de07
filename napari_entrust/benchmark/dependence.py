"""How much dependence is left between F_c, F_u,m and F_cf after training (correlation and HSIC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..inference.slices import case_volume, encoder_input, head_box, head_voxels
from ..io.loader import load_case
from ..training import independence


def feature_dependence(bundle, case_dirs: list[Path], pixels: int = 2048, hsic_pixels: int = 512) -> dict:
    """Mean |Pearson correlation| between channels, and HSIC, for F_c–F_u, F_c–F_cf and F_u–F_cf.

    Over brain pixels of the lesion's slices of each case (the pixels the independence loss sees).
    """
    cfg, net = bundle.config, bundle.net
    gen = torch.Generator().manual_seed(0)
    sums: dict[str, list[float]] = {}
    for case_dir in case_dirs:
        case = load_case(case_dir)
        volume, grid = case_volume(case, cfg.modalities, cfg.spacing_mm)
        zs = np.linspace(grid[2] * 0.3, grid[2] * 0.7, 6).astype(int).tolist()
        x = encoder_input(volume, zs, cfg.context, head_box(head_voxels(volume)[0]), net.size_multiple)
        with torch.inference_mode():
            f = net.features(x)
        brain = (x[:, :, cfg.context] != 0).any(1).reshape(-1)
        idx = torch.nonzero(brain).squeeze(1)
        idx = idx[torch.randperm(idx.numel(), generator=gen)[:pixels]]
        parts = {
            name: independence.pixels(a, idx).double()
            for name, a in (("F_c", f.consensus), ("F_u", f.specific.flatten(1, 2)), ("F_cf", f.conflict))
        }
        for a, b in (("F_c", "F_u"), ("F_c", "F_cf"), ("F_u", "F_cf")):
            pa, pb = parts[a], parts[b]
            if pb.std() == 0 or pa.std() == 0:
                continue
            za = (pa - pa.mean(0)) / (pa.std(0) + 1e-8)
            zb = (pb - pb.mean(0)) / (pb.std(0) + 1e-8)
            corr = float(((za.T @ zb) / za.shape[0]).abs().mean())
            h = float(independence.hsic(pa[:hsic_pixels].float(), pb[:hsic_pixels].float()))
            sums.setdefault(f"{a}~{b} corr", []).append(corr)
            sums.setdefault(f"{a}~{b} HSIC", []).append(h)
    return {k: float(np.mean(v)) for k, v in sums.items()}
