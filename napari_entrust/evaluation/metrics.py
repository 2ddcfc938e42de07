"""Evaluation metrics for one case: overlap, calibration, uncertainty quality, hypotheses, conflict.

Arrays are RAS+ on one grid; ``*_regions`` are bool (3, X, Y, Z) WT/TC/ET stacks (see
:func:`napari_entrust.io.labels.to_regions`). Library code is called where it exists: MONAI for Dice,
HD95, ECE and the reliability bins, scikit-learn for AUROC/AUPRC, SciPy for the Hungarian match
and distance maps. What is ours is small and unit-tested against hand-computed values: Brier, NLL,
UEO, the QU-BraTS score, GED, HM-IoU and the conflict AUROC's neighbourhood.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..io.labels import REGIONS

NEIGHBOURHOOD_MM = 5.0  #: lesion neighbourhood for the conflict AUROC and the calibration ROI
ECE_BINS = 20
QU_BRATS_POINTS = 40  #: uncertainty thresholds of the QU-BraTS score (as in the challenge's code)


# -- overlap -------------------------------------------------------------------------------------


def dice(pred_regions: np.ndarray, gt_regions: np.ndarray) -> dict[str, float]:
    """Dice per region (MONAI); both empty counts as 1."""
    from monai.metrics import compute_dice

    p = torch.from_numpy(np.ascontiguousarray(pred_regions, dtype=np.float32))[None]
    g = torch.from_numpy(np.ascontiguousarray(gt_regions, dtype=np.float32))[None]
    values = compute_dice(p, g, include_background=True, ignore_empty=False)[0].tolist()
    return {r: float(v) for r, v in zip(REGIONS, values)}


def dice_hd95(pred_regions: np.ndarray, gt_regions: np.ndarray, spacing) -> dict[str, float]:
    """Dice and 95th-percentile Hausdorff distance (mm) per region (MONAI).

    Both empty: Dice 1, HD95 0. One empty: Dice 0, HD95 NaN (undefined; counted separately).
    """
    from monai.metrics import compute_hausdorff_distance

    p = torch.from_numpy(np.ascontiguousarray(pred_regions, dtype=np.float32))[None]
    g = torch.from_numpy(np.ascontiguousarray(gt_regions, dtype=np.float32))[None]
    out = {}
    for i, (r, d) in enumerate(dice(pred_regions, gt_regions).items()):
        out[f"dice_{r}"] = d
        if not pred_regions[i].any() and not gt_regions[i].any():
            out[f"hd95_{r}"] = 0.0
        elif not pred_regions[i].any() or not gt_regions[i].any():
            out[f"hd95_{r}"] = float("nan")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hd = compute_hausdorff_distance(
                    p[:, i : i + 1],
                    g[:, i : i + 1],
                    include_background=True,
                    percentile=95,
                    spacing=[float(s) for s in spacing],
                )
            out[f"hd95_{r}"] = float(hd.item())
    return out


# -- calibration ---------------------------------------------------------------------------------


def ece(prob: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None, bins: int = ECE_BINS) -> float:
    """Expected calibration error (MONAI ``CalibrationErrorMetric``), mean over the region channels.

    ``prob``, ``truth``: (3, ...); ``where``: voxels to use (default all).
    """
    from monai.metrics import CalibrationErrorMetric

    p, y = _flat(prob, where), _flat(truth, where)
    if p.shape[-1] == 0:
        return float("nan")
    return float(CalibrationErrorMetric(num_bins=bins)(p, y).nanmean())


def reliability_bins(
    prob: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None, bins: int = ECE_BINS
) -> dict[str, list[float]]:
    """Per-bin voxel count, summed p and summed truth over all region channels (summable over cases)."""
    from monai.metrics.calibration import calibration_binning

    p, y = _flat(prob, where).reshape(1, 1, -1), _flat(truth, where).reshape(1, 1, -1)
    mean_p, mean_y, counts = (t[0, 0].nan_to_num(0.0).double() for t in calibration_binning(p, y, num_bins=bins))
    return {"count": counts.tolist(), "sum_p": (mean_p * counts).tolist(), "sum_y": (mean_y * counts).tolist()}


def _flat(a: np.ndarray, where: np.ndarray | None) -> torch.Tensor:
    a = a[:, where] if where is not None else a.reshape(a.shape[0], -1)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]


def brier(prob: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean squared difference between p and the 0/1 truth, over voxels and region channels."""
    p, y = (np.asarray(a[:, where] if where is not None else a, dtype=np.float64) for a in (prob, truth))
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def nll(prob: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None, eps: float = 1e-6) -> float:
    """Mean binary negative log-likelihood (nats), p clipped to [eps, 1 − eps]."""
    p, y = (np.asarray(a[:, where] if where is not None else a, dtype=np.float64) for a in (prob, truth))
    if not p.size:
        return float("nan")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# -- uncertainty quality -------------------------------------------------------------------------


def case_ranking(scores, dice_scores) -> float:
    """Spearman ρ between case uncertainty scores and the cases' errors 1 − Dice (1: perfect ranking).

    NaN with fewer than 3 cases or constant inputs.
    """
    from scipy.stats import spearmanr

    scores, errors = np.asarray(scores, float), 1 - np.asarray(dice_scores, float)
    if scores.size < 3:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: NaN, reported as such
        return float(spearmanr(scores, errors).statistic)


def error_detection(uncertainty: np.ndarray, error: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC of an uncertainty map for voxel errors (NaN when errors are all or none)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    u, e = uncertainty.ravel(), error.ravel().astype(bool)
    if not 0 < e.sum() < e.size:
        return {"error_auroc": float("nan"), "error_auprc": float("nan")}
    return {"error_auroc": float(roc_auc_score(e, u)), "error_auprc": float(average_precision_score(e, u))}


def ueo(uncertainty: np.ndarray, error: np.ndarray, thresholds: int = 101) -> float:
    """Uncertainty-error overlap (Jungo & Reyes 2019): max over τ of Dice(uncertainty > τ, error)."""
    u, e = uncertainty.ravel(), error.ravel().astype(bool)
    n_err = e.sum()
    best = 0.0 if n_err else 1.0
    for tau in np.linspace(0.0, 1.0, thresholds)[:-1]:
        flagged = u > tau
        n_flag = flagged.sum()
        if n_flag + n_err:
            best = max(best, 2.0 * (flagged & e).sum() / (n_flag + n_err))
    return float(best)


def qu_brats(
    uncertainty: np.ndarray,
    pred_regions: np.ndarray,
    gt_regions: np.ndarray,
    brain: np.ndarray,
    points: int = QU_BRATS_POINTS,
) -> dict[str, float]:
    """BraTS uncertainty-challenge score (Mehta et al. 2022), uncertainty in [0, 1] per region.

    For thresholds τ from 1 down to 0, voxels with uncertainty > τ are filtered out; the Dice of the
    rest, and the fractions of true positives / true negatives (in the brain) filtered out, are
    integrated over τ. Score per region = (AUC_Dice + (1 − AUC_FTP) + (1 − AUC_FTN)) / 3, then the
    mean over regions. ``uncertainty``: (3, ...) one map per region.
    """
    taus = np.linspace(1.0, 0.0, points + 1)
    out, scores = {}, []
    for i, r in enumerate(REGIONS):
        u, p, g = uncertainty[i], pred_regions[i].astype(bool), gt_regions[i].astype(bool)
        tp, tn = p & g & brain, ~p & ~g & brain
        n_tp, n_tn = tp.sum(), tn.sum()
        dice, ftp, ftn = [], [], []
        for tau in taus:
            keep = u <= tau
            inter = (p & g & keep).sum()
            denom = (p & keep).sum() + (g & keep).sum()
            dice.append(2.0 * inter / denom if denom else 1.0)
            ftp.append((n_tp - (tp & keep).sum()) / n_tp if n_tp else 0.0)
            ftn.append((n_tn - (tn & keep).sum()) / n_tn if n_tn else 0.0)
        auc = [float(np.trapezoid(v[::-1], taus[::-1])) for v in (dice, ftp, ftn)]
        out[f"qu_dice_auc_{r}"], out[f"qu_ftp_auc_{r}"], out[f"qu_ftn_auc_{r}"] = auc
        scores.append((auc[0] + (1 - auc[1]) + (1 - auc[2])) / 3)
        out[f"qu_brats_{r}"] = scores[-1]
    out["qu_brats"] = float(np.mean(scores))
    return out


# -- hypotheses against raters -------------------------------------------------------------------


def _crop_to_union(*stacks: np.ndarray) -> list[np.ndarray]:
    """IoU is unchanged outside the union of all masks: crop every (N, 3, X, Y, Z) stack to its box."""
    union = np.zeros(stacks[0].shape[-3:], bool)
    for s in stacks:
        union |= s.any(axis=(0, 1))
    if not union.any():
        return [s[..., :0, :0, :0] for s in stacks]
    box = tuple(slice(a.min(), a.max() + 1) for a in np.nonzero(union))
    return [s[(...,) + box] for s in stacks]


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, 3, ...) × (Nb, 3, ...) bool -> (Na, Nb) IoU averaged over regions (both empty: IoU 1)."""
    a2 = a.reshape(a.shape[0], a.shape[1], -1).astype(np.float32)
    b2 = b.reshape(b.shape[0], b.shape[1], -1).astype(np.float32)
    inter = np.einsum("irv,jrv->ijr", a2, b2)
    union = a2.sum(-1)[:, None] + b2.sum(-1)[None] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return iou.mean(-1)


def ged(samples_regions: np.ndarray, raters_regions: np.ndarray) -> float:
    """Generalised energy distance D² = 2 E d(S, Y) − E d(S, S') − E d(Y, Y'), d = 1 − IoU.

    Expectations over all pairs, self-pairs included (the usual estimator, Kohl et al. 2018).
    """
    s, y = _crop_to_union(samples_regions, raters_regions)
    d_sy = 1 - pairwise_iou(s, y)
    d_ss = 1 - pairwise_iou(s, s)
    d_yy = 1 - pairwise_iou(y, y)
    return float(2 * d_sy.mean() - d_ss.mean() - d_yy.mean())


def hungarian_iou(samples_regions: np.ndarray, raters_regions: np.ndarray) -> float:
    """Mean IoU of an optimal one-to-one match of samples to raters (raters repeated to cover K samples)."""
    s, y = _crop_to_union(samples_regions, raters_regions)
    reps = -(-len(s) // len(y))
    iou = pairwise_iou(s, np.concatenate([y] * reps))
    rows, cols = linear_sum_assignment(-iou)
    return float(iou[rows, cols].mean())


# -- conflict localisation -----------------------------------------------------------------------


def lesion_neighbourhood(lesion: np.ndarray, spacing, mm: float = NEIGHBOURHOOD_MM) -> np.ndarray:
    """Voxels within ``mm`` of the lesion (the lesion included)."""
    if not lesion.any():
        return lesion.copy()
    return ndimage.distance_transform_edt(~lesion, sampling=spacing) <= mm


def conflict_localisation(
    uncertainty: np.ndarray,
    conflict: np.ndarray,
    lesion: np.ndarray,
    spacing,
    samples_wt: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> dict[str, float]:
    """AUROC of the uncertainty for conflict voxels vs the other voxels within 5 mm of the lesion.

    With the hypotheses' WT masks ``samples_wt`` (K, ...), also their mean pairwise disagreement
    inside conflict regions, in the rest of that neighbourhood, and the ratio of the two.
    ``exclude``: voxels on neither side (the other kinds of conflict, when one kind is scored).
    """
    from sklearn.metrics import roc_auc_score

    conflict = conflict.astype(bool)
    others = np.zeros_like(conflict) if exclude is None else exclude.astype(bool) & ~conflict
    near = lesion_neighbourhood(lesion | conflict | others, spacing)
    negatives = near & ~conflict & ~others
    out = {"conflict_auroc": float("nan")}
    if conflict.any() and negatives.any():
        y = np.r_[np.ones(conflict.sum()), np.zeros(negatives.sum())]
        out["conflict_auroc"] = float(roc_auc_score(y, np.r_[uncertainty[conflict], uncertainty[negatives]]))
    if samples_wt is not None and conflict.any() and negatives.any():
        k = len(samples_wt)
        share = samples_wt.mean(0)
        disagreement = 2 * share * (1 - share) * k / max(k - 1, 1)  # mean pairwise disagreement
        inside, rest = float(disagreement[conflict].mean()), float(disagreement[negatives].mean())
        out.update(
            {
                "disagreement_conflict": inside,
                "disagreement_rest": rest,
                "disagreement_ratio": inside / rest if rest > 0 else float("inf") if inside > 0 else float("nan"),
            }
        )
    return out


def uncertainty_error_bins(uncertainty: np.ndarray, error: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Voxel count and error count per uncertainty bin on [0, 1] (summable over cases, for plotting)."""
    idx = np.clip((uncertainty.ravel() * bins).astype(int), 0, bins - 1)
    return {
        "count": np.bincount(idx, minlength=bins).astype(float).tolist(),
        "errors": np.bincount(idx, weights=error.ravel().astype(float), minlength=bins).tolist(),
    }
