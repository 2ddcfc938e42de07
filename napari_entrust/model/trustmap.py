"""TrustMap: from K hypotheses to calibrated per-voxel uncertainty, and a case-level score.

For each region channel: p̄ (mean of the hypotheses, with their first-step prediction; see
:func:`trust_statistics`), total entropy H of the hypotheses' mean, expected entropy
E_k H(p_k) (aleatoric), mutual information MI = H − E_k H(p_k) (epistemic), the probe
sensitivity (how much p̄ moves when F_cf is scaled by 1 ± ε) and |F_cf|; all are written as
layers. The calibration head maps p̄ to a calibrated probability p̂ by a monotone map learned per
region (:class:`CalibrationHead`, so the mask and the order of voxels by uncertainty stay those
of p̄); the TrustMap is 1 − |2p̂ − 1| (1 = a coin flip), taken as the maximum over WT, TC and ET.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of Bernoulli(p), in [0, 1]."""
    p = p.clamp(1e-6, 1 - 1e-6)
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


def trust_statistics(
    probs: torch.Tensor,
    probe_plus: torch.Tensor | None,
    probe_minus: torch.Tensor | None,
    conflict_norm: torch.Tensor,
    probe_strength: float,
    first_step: torch.Tensor | None = None,
) -> torch.Tensor:
    """Calibration-head inputs (B, 3, 6, H, W): p̄, H(p̄), E H, MI, probe sensitivity, |F_cf|.

    ``probs``: (B, K, 3, H, W); ``conflict_norm``: (B, H, W). ``first_step`` (B, 3, H, W): the K
    hypotheses' mean x0 prediction at the first (pure-noise) step. Both it and the mean of the final
    hypotheses estimate p(y0 | image); the final hypotheses are nearly binary, so their mean is a
    vote with sampling noise (binomial s.d. up to 0.18 at K = 8), while the first step's prediction
    carries none. p̄, the calibration head's input, is the average of the two: on held-out phantoms
    the TrustMap ranked conflict voxels at AUROC 0.90 this way against 0.80 from the vote alone. The
    entropies and MI describe the hypotheses themselves, so they use the vote.
    """
    vote = probs.mean(1)
    mean = vote if first_step is None else (vote + first_step) / 2
    total = binary_entropy(vote)
    expected = binary_entropy(probs).mean(1)
    mutual = (total - expected).clamp_min(0.0)
    if probe_plus is None or probe_strength <= 0:
        probe = torch.zeros_like(mean)
    else:
        probe = ((probe_plus - probe_minus).abs() / (2 * probe_strength)).clamp(0.0, 1.0)
    cf = conflict_norm[:, None].expand_as(mean)
    return torch.stack([mean, total, expected, mutual, probe, cf], dim=2)


def uncertainty(p: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """1 − |2p − 1|: 0 where p is 0 or 1, 1 at a coin flip (the TrustMap of one region channel)."""
    if torch.is_tensor(p):
        return 1 - (2 * p - 1).abs()
    return 1 - np.abs(2 * p - 1)


def trustmap(calibrated: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(3, ...) calibrated probabilities -> (...) uncertainty in [0, 1] (max over region channels)."""
    if torch.is_tensor(calibrated):
        return uncertainty(calibrated).amax(0)
    return uncertainty(calibrated).max(0)


class CalibrationHead(nn.Module):
    """Calibrated probability p̂ = σ(sign(z)·g_r(|z|)) with z = logit p̄ and g_r increasing, g_r(0) = 0.

    A monotone map of p̄ that is symmetric about ½, learned per region (WT, TC, ET): it keeps the
    mask (p̂ ≥ ½ exactly where p̄ ≥ ½) and the order of voxels by uncertainty within a region, and
    learns only how sharp the probabilities should be. g_r is piecewise linear in |z| with positive
    slopes (identity at initialisation). A free network over all the TrustMap statistics (p̄,
    entropies, MI, probe, |F_cf|) calibrated equally well but reordered voxels and lost the
    conflict ranking (conflict AUROC 0.60 against 0.81 for p̄; see the model card).
    """

    knots = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  #: segment ends in |logit p̄|; the last segment is open

    def __init__(self, regions: int = 3):
        super().__init__()
        identity = math.log(math.e - 1)  # softplus(identity) == 1
        self.raw_slopes = nn.Parameter(torch.full((regions, len(self.knots) + 1), identity))

    def slopes(self) -> torch.Tensor:
        """(regions, segments) positive slopes of g_r."""
        return F.softplus(self.raw_slopes)

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        """stats: (B, 3, n, H, W) TrustMap statistics, p̄ first -> calibrated logits (B, 3, H, W)."""
        z = torch.logit(stats[:, :, 0].clamp(1e-6, 1 - 1e-6))
        size = z.abs()
        edges = (0.0, *self.knots, math.inf)
        slopes = self.slopes()
        g = torch.zeros_like(z)
        for i in range(len(edges) - 1):
            g = g + slopes[:, i, None, None] * (size - edges[i]).clamp(0.0, edges[i + 1] - edges[i])
        return torch.sign(z) * g


def case_score(trust: np.ndarray, wt_probability: np.ndarray, sample_wt_ml: np.ndarray) -> dict:
    """Case-level uncertainty: mean TrustMap where a tumour is plausible, and WT volume spread.

    ``score`` in [0, 1] is the mean TrustMap over voxels with p̂(WT) ≥ 0.05 (0 if none), so a case
    whose lesion border is confidently placed scores low; ``wt_volume_cv`` is the coefficient of
    variation of the whole-tumour volume across the hypotheses.
    """
    roi = wt_probability >= 0.05
    score = float(trust[roi].mean()) if roi.any() else 0.0
    mean = float(np.mean(sample_wt_ml))
    cv = float(np.std(sample_wt_ml) / mean) if mean > 0 else 0.0
    return {"score": score, "wt_volume_cv": cv, "roi_ml_voxels": int(roi.sum())}
