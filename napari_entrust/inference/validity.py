"""Is this input like what the model was trained on? A validity score with plain-language reasons.

A segmentation of an input unlike the training data can look confident and be wrong, so every
prediction is checked, never silently: the scan's geometry (voxel size, field of view), whether
each modality's head outline matches the others' (a flipped or shifted volume), each modality's
intensity histogram inside the head, the contrast between modalities (is there any enhancement
on T1ce?), each modality's noise level, and the distance of the case's pooled EnFuse features
from the training features (Mahalanobis, Ledoit-Wolf covariance). The histogram and contrast limits
are the widest seen over the training and calibration cases; the feature limit comes from the
calibration cases alone, which the backbone never trained on, so an unseen training-like case
passes. The noise limit is fixed (:data:`NOISE_LIMIT`): a model trained on varied scans widens the
fitted limits until a corrupted series passes them (measured: σ = 0.6 × the mean added noise,
features 3.2 against a limit of 3.4).

Each check gives ``excess`` = how far beyond its limit the case is, relative to the limit (0 when
within, at most :data:`MAX_EXCESS`). Its score is exp(−2·excess); the validity score is the lowest
check score, and a check whose excess is above :data:`FLAG_EXCESS` adds a reason. Statistics are fitted with
:func:`fit_validity` at training time and stored in the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import ndimage

from ..io.modalities import DISPLAY_NAMES
from ..progress import Steps
from .normalize import head_mask
from .slices import encoder_input, head_box, head_voxels

HISTOGRAM_RANGE = (-0.5, 2.0)  #: normalised intensities (head percentiles 0.5 / 99.5 → 0 / 1)
HISTOGRAM_BINS = 32
ENHANCEMENT_MARGIN = 0.25  #: T1ce − T1 above this (normalised units) counts as enhancing
HISTOGRAM_FLOOR = 0.05  #: histogram distances below 5 % of voxels are never flagged
FLAG_EXCESS = 0.25  #: a check more than 25 % beyond its limit is reported
MAX_EXCESS = 100.0  #: excess is capped so summary.json stays finite (valid JSON)
MIN_SLICE_VOXELS = 200  #: slices with fewer head voxels are not pooled
SPACING_MM = (0.3, 7.0)  #: plausible voxel sizes
HEAD_EXTENT_MM = (90.0, 320.0)  #: plausible field of view of a head along its largest axis
OUTLINE_MISMATCH_LIMIT = 0.05  #: registered modalities share ≥ 95 % of the head outline (Dice)
OUTLINE_GRID_MM = 4.0  #: head outlines are compared on a grid about this coarse (cheap on 1 mm cases)
#: noise σ in normalised units (the head's 0.5-99.5th percentiles -> 0-1) on the model grid; training
#: phantoms reach 0.08 (randomised, 7 % noise), the other generator's 1 mm cases 0.02
NOISE_LIMIT = 0.1
_NOISE_KERNEL = np.array([1.0, -2.0, 1.0], np.float32)  #: Immerkær's 3 × 3 mask, separably: zero on planes
_NOISE_GAIN = 6.0 * 0.6745  #: the mask's response to N(0, σ²) has σ·6; its median |·| is 0.6745 of that


@dataclass
class ValidityReport:
    """What ``entrust predict`` writes to summary.json and the widget shows as a banner."""

    score: float  #: 1 = like the training data; below 0.5 = at least one check far outside
    flagged: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, dict] = field(default_factory=dict)  #: name -> {value, limit, excess}

    def to_dict(self) -> dict:
        return asdict(self)


def _name(modality: str) -> str:
    return DISPLAY_NAMES.get(modality, modality)


def histogram(values: np.ndarray) -> np.ndarray:
    """Fraction of voxels per bin of normalised intensity (values outside the range go to the end bins)."""
    counts, _ = np.histogram(np.clip(values, *HISTOGRAM_RANGE), bins=HISTOGRAM_BINS, range=HISTOGRAM_RANGE)
    return counts / max(counts.sum(), 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Half the L1 distance between two histograms: the share of voxels that would have to move."""
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def enhancement(volume: np.ndarray, modalities: Sequence[str], head: np.ndarray) -> float | None:
    """Share of head voxels brighter on T1ce than on T1 by more than the margin (None without both)."""
    modalities = list(modalities)
    if "t1" not in modalities or "t1ce" not in modalities:
        return None
    if not head.any():
        return 0.0
    t1, t1ce = volume[modalities.index("t1")][head], volume[modalities.index("t1ce")][head]
    return float(((t1ce - t1) > ENHANCEMENT_MARGIN).mean())


def intensity_descriptors(volume: np.ndarray, modalities: Sequence[str]) -> dict:
    """Histograms per modality and the T1ce enhancement of a normalised (M, X, Y, Z) volume."""
    head = volume.any(0)
    return {
        "histograms": {m: histogram(volume[i][head]) for i, m in enumerate(modalities)},
        "enhancement": enhancement(volume, modalities, head),
    }


def pooled_features(condition: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) EnFuse features, (B, H, W) head mask -> (n, C) mean feature of each slice with enough head."""
    keep = head.flatten(1).sum(1) >= MIN_SLICE_VOXELS
    if not keep.any():
        return condition.new_zeros((0, condition.shape[1]))
    if not keep.all():
        condition, head = condition[keep], head[keep]
    w = head.to(condition.dtype)
    return torch.einsum("bchw,bhw->bc", condition, w) / w.flatten(1).sum(1)[:, None]


def case_features(net, volume: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Pooled EnFuse features of every slice of a normalised (M, X, Y, Z) volume (what the engine pools)."""
    head, slices = head_voxels(volume)
    box = head_box(head)
    hx, hy = box[0].stop - box[0].start, box[1].stop - box[1].start
    device = next(net.parameters()).device
    out = []
    with torch.inference_mode():
        for i in range(0, len(slices), chunk):
            zs = slices[i : i + chunk]
            x = encoder_input(volume, zs, net.cfg.context, box, net.size_multiple)
            cond = net.features(x.to(device)).condition()[..., :hx, :hy].float().cpu()
            out.append(pooled_features(cond, head[box[0], box[1]][..., zs].permute(2, 0, 1)))
    return torch.cat(out) if out else torch.zeros((0, 0))


def mahalanobis_median(features: torch.Tensor | np.ndarray, mean: np.ndarray, precision: np.ndarray) -> float:
    """Median over slices of the Mahalanobis distance to the training features (robust to a few odd slices)."""
    f = np.asarray(features, dtype=np.float64)
    if f.size == 0:
        return math.inf
    d = f - mean
    return float(np.median(np.sqrt(np.einsum("ij,jk,ik->i", d, precision, d).clip(0))))


def fit_validity(
    net, train_volumes: Sequence[np.ndarray], reference_volumes: Sequence[np.ndarray], modalities: Sequence[str]
) -> Steps[dict]:
    """Statistics for the checks below (stored in the checkpoint as ``validity``); yields progress.

    Mean histograms and the feature mean/covariance come from the training volumes; the limits of
    histograms and contrast from all volumes; the feature limit from the reference (calibration)
    volumes, which the backbone never saw. The volumes are taken one at a time (a sequence may
    read each from disk on access), so hundreds of cases need no more memory than one.
    """
    from sklearn.covariance import LedoitWolf

    if not len(reference_volumes):
        raise ValueError("input-validity limits need reference (calibration) cases")
    n_train, total = len(train_volumes), len(train_volumes) + len(reference_volumes)
    descriptors, feats = [], []
    for i in range(total):
        v = np.array(train_volumes[i] if i < n_train else reference_volumes[i - n_train], dtype=np.float32)
        descriptors.append(intensity_descriptors(v, modalities))
        feats.append(case_features(net, torch.from_numpy(v)).numpy())
        yield (i + 1) / total, f"input statistics {i + 1}/{total}"
    mean_hist = {m: np.mean([d["histograms"][m] for d in descriptors[:n_train]], 0) for m in modalities}
    lw = LedoitWolf().fit(np.concatenate(feats[:n_train]).astype(np.float64))
    mean, precision = lw.location_, lw.precision_
    # histograms and contrast do not depend on the backbone: every case sets their limits; the
    # feature distance does, so only cases the backbone never trained on set its limit
    hist_limit = {
        m: max(HISTOGRAM_FLOOR, max(total_variation(d["histograms"][m], mean_hist[m]) for d in descriptors))
        for m in modalities
    }
    enhancing = [d["enhancement"] for d in descriptors if d["enhancement"] is not None]
    return {
        "modalities": list(modalities),
        "histograms": {m: mean_hist[m].tolist() for m in modalities},
        "histogram_limit": hist_limit,
        "enhancement_limit": min(enhancing) if enhancing else None,
        "feature_mean": mean.tolist(),
        "feature_precision": precision.tolist(),
        "feature_limit": max(mahalanobis_median(f, mean, precision) for f in feats[n_train:]),
        "fit_cases": {"train": n_train, "reference": len(reference_volumes)},
    }


def _check(value: float, limit: float, above: bool = True) -> dict:
    """Excess beyond a limit, relative to it (``above``: larger values are worse)."""
    excess = min(MAX_EXCESS, max(0.0, value - limit if above else limit - value) / max(limit, 1e-6))
    return {"value": round(float(value), 4), "limit": round(float(limit), 4), "excess": round(float(excess), 3)}


def geometry_checks(shape: Sequence[int], spacing: Sequence[float]) -> tuple[dict, list[str]]:
    """Voxel size and field of view against what a head scan has."""
    checks, reasons = {}, []
    spacing = [float(s) for s in spacing]
    worst = max(max(SPACING_MM[0] / s, s / SPACING_MM[1]) for s in spacing)
    checks["voxel_size"] = {
        "value": [round(s, 3) for s in spacing],
        "limit": list(SPACING_MM),
        "excess": round(min(MAX_EXCESS, max(0.0, worst - 1.0)), 3),
    }
    if checks["voxel_size"]["excess"] > FLAG_EXCESS:
        reasons.append(
            f"voxel size {' × '.join(f'{s:.2g}' for s in spacing)} mm is unusual for a brain MRI "
            f"(expected {SPACING_MM[0]}–{SPACING_MM[1]} mm)"
        )
    extent = max(n * s for n, s in zip(shape, spacing))
    lo, hi = HEAD_EXTENT_MM
    excess = min(MAX_EXCESS, max(0.0, lo / extent - 1.0, extent / hi - 1.0))
    checks["field_of_view"] = {"value": round(extent, 1), "limit": [lo, hi], "excess": round(excess, 3)}
    if excess > FLAG_EXCESS:
        reasons.append(f"field of view {extent:.0f} mm is unlike a head ({lo:.0f}–{hi:.0f} mm): is this a brain scan?")
    return checks, reasons


def noise_level(image: np.ndarray, inner: np.ndarray) -> float:
    """Noise σ of one volume, from the median |response| of Immerkær's in-plane Laplacian mask over
    ``inner`` voxels: smooth tissue gives none, and the median ignores tissue edges."""
    response = ndimage.convolve1d(ndimage.convolve1d(image, _NOISE_KERNEL, axis=0), _NOISE_KERNEL, axis=1)
    return float(np.median(np.abs(response[inner]))) / _NOISE_GAIN


def noise_checks(volume: np.ndarray, modalities: Sequence[str]) -> tuple[dict, list[str]]:
    """Each modality's noise on the normalised (M, X, Y, Z) volume the model sees: a corrupted or
    very noisy series is named, whatever the model's training statistics say."""
    head = volume.any(0)
    if not head.any():
        return {}, []
    box = ndimage.find_objects(head.view(np.uint8))[0]
    every_other = (slice(None), slice(None), slice(None, None, 2))  # the mask is in-plane: half the slices suffice
    inner = ndimage.binary_erosion(head[box], iterations=2)[every_other]
    if not inner.any():
        return {}, []
    checks, reasons = {}, []
    for i, m in enumerate(modalities):
        sigma = noise_level(volume[i][box][every_other], inner)
        checks[f"noise_{m}"] = c = _check(sigma, NOISE_LIMIT)
        if c["excess"] > FLAG_EXCESS:
            reasons.append(
                f"{_name(m)} is very noisy (noise {sigma:.0%} of its intensity range, at most {NOISE_LIMIT:.0%} "
                "expected): corrupted, or a low-field or accelerated scan?"
            )
    return checks, reasons


def outline_check(images: dict[str, np.ndarray], spacing: Sequence[float]) -> tuple[dict, list[str]]:
    """Each modality's own head outline against the outline most of the others share.

    Normalisation uses one head mask for all modalities, so a flipped, shifted or foreign volume
    distorts every modality's statistics; this check names the one that does not fit.
    """
    if len(images) < 3:
        return {}, []
    step = tuple(max(1, round(OUTLINE_GRID_MM / float(s))) for s in spacing)
    masks = {m: head_mask({m: a[:: step[0], :: step[1], :: step[2]]}) for m, a in images.items()}
    checks, reasons = {}, []
    majority = len(masks) // 2  #: of the other modalities: 2 of 3
    for m, own in masks.items():
        others = np.sum([mask for k, mask in masks.items() if k != m], axis=0) >= majority
        dice = 2 * float((own & others).sum()) / max(float(own.sum() + others.sum()), 1.0)
        checks[f"outline_{m}"] = c = _check(1.0 - dice, OUTLINE_MISMATCH_LIMIT)
        if c["excess"] > FLAG_EXCESS:
            reasons.append(
                f"{_name(m)}'s head outline matches the other modalities' on only {dice:.0%} of it (at least "
                f"{1 - OUTLINE_MISMATCH_LIMIT:.0%} when they are registered): is it flipped, shifted or from another "
                "scan? Other warnings may follow from it"
            )
    return checks, reasons


def intensity_checks(volume: np.ndarray, modalities: Sequence[str], stats: dict) -> tuple[dict, list[str]]:
    """Histograms and T1ce enhancement of the normalised volume against the training statistics."""
    checks, reasons = {}, []
    d = intensity_descriptors(volume, modalities)
    for m in modalities:
        if m not in stats.get("histograms", {}):
            continue
        tv = total_variation(d["histograms"][m], stats["histograms"][m])
        checks[f"intensities_{m}"] = c = _check(tv, stats["histogram_limit"][m])
        if c["excess"] > FLAG_EXCESS:
            reasons.append(
                f"{_name(m)} intensities unlike training data ({tv:.0%} of head voxels would have to "
                f"change brightness; at most {stats['histogram_limit'][m]:.0%} in unseen training-like cases)"
            )
    limit = stats.get("enhancement_limit")
    if limit and d["enhancement"] is not None:
        checks["t1ce_enhancement"] = c = _check(d["enhancement"], limit, above=False)
        if c["excess"] > FLAG_EXCESS:
            reasons.append(
                f"T1ce looks like T1: contrast missing? ({d['enhancement']:.2%} of head voxels enhance; "
                f"at least {limit:.2%} in training data; a non-enhancing tumour also shows this)"
            )
    return checks, reasons


def feature_check(features: torch.Tensor | np.ndarray, stats: dict) -> tuple[dict, list[str]]:
    """Distance of the pooled EnFuse features from the training features."""
    d = mahalanobis_median(features, np.asarray(stats["feature_mean"]), np.asarray(stats["feature_precision"]))
    if not math.isfinite(d):
        return {"features": {"value": None, "limit": stats["feature_limit"], "excess": MAX_EXCESS}}, [
            "no slice has enough head voxels to compare the model's features with training data"
        ]
    c = _check(d, stats["feature_limit"])
    reasons = []
    if c["excess"] > FLAG_EXCESS:
        reasons.append(
            f"the model's features are far from anything seen in training (distance {d:.1f}, at most "
            f"{stats['feature_limit']:.1f} in unseen training-like cases): treat the result with caution"
        )
    return {"features": c}, reasons


def report(*parts: tuple[dict, list[str]]) -> ValidityReport:
    """Combine check results into one report: score = the lowest check score."""
    checks, reasons = {}, []
    for c, r in parts:
        checks.update(c)
        reasons.extend(r)
    score = min((math.exp(-2 * c["excess"]) for c in checks.values()), default=1.0)
    return ValidityReport(round(score, 3), bool(reasons), reasons, checks)


def describe(report: dict) -> str:
    """One line per problem for the CLI and the widget's banner (``report`` as in summary.json)."""
    if not report.get("flagged"):
        return f"input check passed (validity {report['score']:.2f})"
    return "\n".join(
        [
            f"WARNING: input unlike the training data (validity {report['score']:.2f}):",
            *(f"  - {r}" for r in report["reasons"]),
        ]
    )
