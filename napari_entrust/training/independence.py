"""Training-only losses that keep F_c, each F_u,m and F_cf independent: cross-covariance and HSIC."""

from __future__ import annotations

import torch

from ..model.enfuse import Features


def pixels(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (N, C) at the chosen flat pixel indices."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])[index]


def cross_covariance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared entry of the cross-covariance of standardised features (N, Ca) and (N, Cb)."""
    a = (a - a.mean(0)) / (a.std(0) + 1e-5)
    b = (b - b.mean(0)) / (b.std(0) + 1e-5)
    return ((a.T @ b) / a.shape[0]).pow(2).mean()


def hsic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Biased HSIC with RBF kernels (median bandwidth) between (n, Ca) and (n, Cb): 0 iff independent."""
    n = a.shape[0]

    def gram(x):
        d = torch.cdist(x, x).pow(2)
        sigma2 = d.detach().median().clamp_min(1e-6)
        return torch.exp(-d / (2 * sigma2))

    h = torch.eye(n, device=a.device) - 1.0 / n
    return torch.trace(gram(a) @ h @ gram(b) @ h) / (n - 1) ** 2


def independence_loss(
    feats: Features,
    mask: torch.Tensor,
    kind: str = "xcov",
    n_pixels: int = 2048,
    n_hsic: int = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dependence between F_c, each F_u,m and F_cf over pixels inside ``mask`` (B, H, W)."""
    idx = torch.nonzero(mask.reshape(-1), as_tuple=False).squeeze(1)
    if idx.numel() < 16:
        return feats.consensus.sum() * 0.0
    idx = idx[torch.randperm(idx.numel(), generator=generator, device="cpu")[:n_pixels].to(idx.device)]
    parts = [pixels(feats.consensus, idx), pixels(feats.conflict, idx)]
    parts += [pixels(feats.specific[:, m], idx) for m in range(feats.specific.shape[1])]
    if not torch.any(feats.conflict != 0):
        parts.pop(1)  # no conflict branch: nothing to decorrelate against
    pairs = [(i, j) for i in range(len(parts)) for j in range(i + 1, len(parts))]
    total = parts[0].new_zeros(())
    if "xcov" in kind:
        total = total + sum(cross_covariance(parts[i], parts[j]) for i, j in pairs) / len(pairs)
    if "hsic" in kind:
        sub = slice(0, min(n_hsic, idx.numel()))
        total = total + sum(hsic(parts[i][sub], parts[j][sub]) for i, j in pairs) / len(pairs)
    return total
