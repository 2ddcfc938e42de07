"""Why is a region uncertain? Per-modality attribution by gradients and by intervention, their fusion,
and measured faithfulness (deletion, insertion, off-target leakage, robustness).

The maps explain the **target score**: the fused head's mean probability of the target's region
channel (WT, TC or ET) over the target voxels. The fused head reads the consensus features F_c
the denoiser is conditioned on; it is deterministic and costs one encoder pass, so a deletion
curve of dozens of points is affordable where re-sampling K hypotheses each time is not. The
whole pipeline is intervened on once per modality as well (:mod:`.pipeline_effects`): how the
TrustMap and the mask in the target change when that modality is replaced.

All maps live on the model grid inside a box around the target (:mod:`.crop`), over the elements
(modality, voxel) of the head; everything outside the box is 0.

- **gradient**: Grad-CAM (``monai.visualize.GradCAM``) on each modality's encoder output, with a
  segmentation target wrapper (:class:`~.crop.TargetLogit`: the fused logit summed over the
  target); :mod:`.gradient`.
- **intervention** (:mod:`.intervention`): occlusion. Modality m's intensities in one block of voxels are
  replaced by its healthy-tissue value (the median over the head) and the drop of the target score,
  per voxel of the block, is the attribution of those voxels.
- **fused** (dual evidence, :mod:`.fusion`): with ĝ, î the positive parts of the two maps scaled to unit mass,
  F = (1 − w/2)·î + (w/2)·ĝ, w = agreement × gradient stability, agreement = 1 − |rank ĝ − rank î|
  (percentile ranks over the elements) and stability = 1 − min(1, CV of the Grad-CAM over
  :data:`STABILITY_DRAWS` noisy inputs). Where the gradient is stable and agrees with the
  intervention, F averages the two (and the gradient orders the voxels inside a block, where î is
  flat); where it is unstable or disagrees, F is the intervention evidence alone.

Faithfulness (:mod:`.faithfulness`) follows the protocol of seed 003: deletion and insertion
curves, off-target leakage and robustness (Spearman correlation between the map and the map of
the input with Gaussian noise of :data:`NOISE` σ).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from ..inference.prediction import Prediction
from ..inference.slices import case_volume, from_model_grid, head_voxels, resample
from ..io.case import Case
from ..io.labels import REGIONS
from ..model.checkpoint import ModelBundle
from ..model.config import SamplingConfig
from ..progress import ShouldStop, Steps, rescaled, stop_if_asked
from .crop import MARGIN, TargetCrop
from .faithfulness import CURVE_POINTS, ON_TARGET_MM, curves, leakage, robustness, shares
from .fusion import fuse
from .gradient import gradient_mapper, gradient_stability
from .intervention import BLOCK, intervention_map
from .pipeline_effects import case_box, modality_effects
from .targets import region_channel

METHODS = ("gradient", "intervention", "fused", "random")  #: random: the floor every map must beat
ATTRIBUTIONS = METHODS[:3]  #: the maps written and shown (random is only a yardstick)
NOISE = 0.05  #: robustness perturbation: σ in normalised-intensity units (about 5 % of tissue contrast)
STABILITY_DRAWS = 3
MAPS_SHARE = 0.65  #: of the maps' progress, for the maps themselves (faithfulness takes the rest)


@dataclass
class Explanation:
    """Attribution maps on the case grid, the per-modality bars and the faithfulness numbers."""

    maps: dict[str, np.ndarray]  #: method -> (M, X, Y, Z) float32 on the case grid
    target: np.ndarray  #: bool, case grid
    modalities: tuple[str, ...]
    shares: dict[str, dict[str, float]]  #: method -> modality -> share of the attribution mass
    faithfulness: dict[str, dict]  #: method -> deletion/insertion AUC and curve, leakage, robustness
    effects: dict[str, dict[str, float]] = field(default_factory=dict)  #: modality -> whole-pipeline change
    summary: dict = field(default_factory=dict)  #: everything JSON-able (written as explanation.json)


def _model_target(target: np.ndarray, grid) -> np.ndarray:
    """The target on the model grid; smaller than a model voxel, the model voxels it touches."""
    soft = resample(torch.from_numpy(target[None].astype(np.float32)), grid)[0].numpy()
    return soft > 0.5 if (soft > 0.5).any() else soft > 0


def _attributions(
    crop: TargetCrop, head: np.ndarray, seed: int, should_stop: ShouldStop | None, noisy_input: bool = True
) -> Steps[tuple[dict, dict | None]]:
    """Every map of the clean input and of one noisy input (for robustness; None without
    ``noisy_input``, which saves the second intervention map), by method."""
    rng = torch.Generator().manual_seed(seed)
    head_crop = torch.from_numpy(head[crop.crop])

    def noisy() -> torch.Tensor:
        return crop.volume + NOISE * torch.randn(crop.volume.shape, generator=rng) * head_crop

    yield 0.0, "gradients (Grad-CAM)"
    grad_cam = gradient_mapper(crop)
    noisy_volume = noisy()
    grad, noisy_grad = grad_cam(crop.volume), grad_cam(noisy_volume)
    draws = [grad_cam(noisy()) for _ in range(STABILITY_DRAWS - 1)]
    occlusion = {}
    runs = (("clean", crop.volume, 0.05, 0.45), ("noisy", noisy_volume, 0.5, 0.45))
    for name, vol, lo, span in runs if noisy_input else (("clean", crop.volume, 0.05, 0.9),):
        occlusion[name] = yield from rescaled(
            intervention_map(crop, vol),
            lo,
            span,
            f"intervention{' (noisy input)' if name == 'noisy' else ''}: ",
            should_stop,
        )
    where = crop.elements
    maps = {
        "gradient": grad,
        "intervention": occlusion["clean"],
        "fused": fuse(grad, occlusion["clean"], gradient_stability(crop, [grad, noisy_grad, *draws]), where),
        "random": np.where(where, np.random.default_rng(seed).random(where.shape), 0.0),
    }
    if not noisy_input:
        return maps, None
    noisy_maps = {
        "gradient": noisy_grad,
        "intervention": occlusion["noisy"],
        "fused": fuse(noisy_grad, occlusion["noisy"], gradient_stability(crop, [noisy_grad, grad, *draws]), where),
        "random": np.where(where, np.random.default_rng(seed + 1).random(where.shape), 0.0),
    }
    return maps, noisy_maps


def _faithfulness(
    crop: TargetCrop, maps: dict, noisy_maps: dict | None, seed: int, spacing_mm: float, methods=METHODS
) -> Steps[dict]:
    """Deletion/insertion curves, leakage and robustness (None without noisy maps) of ``methods``' maps."""
    faith = {}
    for i, method in enumerate(methods):
        yield i / len(methods), f"faithfulness of the {method} map"
        faith[method] = {
            **curves(crop, maps[method], seed),
            "leakage": leakage(maps[method], crop.target.numpy(), spacing_mm),
            "robustness": None if noisy_maps is None else robustness(maps[method], noisy_maps[method], crop.elements),
        }
    return faith


def _on_case_grid(maps: dict, crop: TargetCrop, grid, shape, n_modalities: int) -> dict[str, np.ndarray]:
    """The written maps, from the crop of the model grid back to the case grid."""
    full = {}
    for method in ATTRIBUTIONS:
        on_grid = np.zeros((n_modalities, *grid), np.float32)
        on_grid[(slice(None), *crop.crop)] = maps[method]
        full[method] = from_model_grid(on_grid, grid, shape).astype(np.float32)
    return full


def explain(
    case: Case,
    bundle: ModelBundle,
    prediction: Prediction,
    target: np.ndarray,
    *,
    channel: int | None = None,
    sampling: SamplingConfig | None = None,
    memory_mb: float = 1024,
    pipeline_effects: bool = True,
    measure_all_maps: bool = True,
    seed: int = 0,
    should_stop: ShouldStop | None = None,
) -> Steps[Explanation]:
    """Explain ``prediction`` over ``target`` (bool, case grid); yields progress, returns an :class:`Explanation`.

    ``channel``: region channel (0 WT, 1 TC, 2 ET); default the most uncertain one over the target.
    ``pipeline_effects``: also re-run the prediction once per modality (:func:`~.pipeline_effects.modality_effects`).
    ``measure_all_maps``: faithfulness of every map, robustness included; False (the viewer, about
    half the time): only the fused map and the random floor, without robustness (it needs a second
    intervention map, of a noisy input). The maps themselves are the same either way.
    """
    target = np.asarray(target, bool)
    if target.shape != case.shape:
        raise InputError(case.name, f"the target region has shape {target.shape}, the case {case.shape}")
    if not target.any():
        raise InputError(case.name, "the target region is empty")
    cfg = bundle.config
    channel = region_channel(prediction.prob, target) if channel is None else channel
    share = 0.5 if pipeline_effects else 1.0  # of the progress bar, for the maps
    t0 = time.perf_counter()
    stop_if_asked(should_stop)
    yield 0.0, "preparing"
    volume, grid = case_volume(case, cfg.modalities, cfg.spacing_mm)
    head = head_voxels(volume)[0].numpy()
    crop = TargetCrop(volume, _model_target(target, grid), head, bundle, channel, memory_mb)
    maps, noisy_maps = yield from rescaled(
        _attributions(crop, head, seed, should_stop, noisy_input=measure_all_maps),
        0.02 * share,
        (MAPS_SHARE - 0.02) * share,
        should_stop=should_stop,
    )
    measured = METHODS if measure_all_maps else ("fused", "random")
    faith = yield from rescaled(
        _faithfulness(crop, maps, noisy_maps, seed, cfg.spacing_mm, measured),
        MAPS_SHARE * share,
        (1 - MAPS_SHARE) * share,
        should_stop=should_stop,
    )
    explanation = Explanation(
        maps=_on_case_grid(maps, crop, grid, case.shape, len(cfg.modalities)),
        target=target,
        modalities=tuple(cfg.modalities),
        shares={m: shares(maps[m], cfg.modalities) for m in ATTRIBUTIONS},
        faithfulness=faith,
    )
    if pipeline_effects:
        explanation.effects = yield from rescaled(
            modality_effects(
                case,
                bundle,
                sampling or SamplingConfig(),
                prediction,
                target,
                case_box(crop, grid, case.shape),
                memory_mb=memory_mb,
                should_stop=should_stop,
            ),
            0.5,
            0.5,
        )
    explanation.summary = _summary(case, explanation, crop, channel, seed, pipeline_effects, t0)
    yield 1.0, "done"
    return explanation


def _summary(
    case: Case, explanation: Explanation, crop: TargetCrop, channel: int, seed: int, pipeline_effects: bool, t0: float
) -> dict:
    """Everything JSON-able about an explanation (written as explanation.json)."""
    faith, target = explanation.faithfulness, explanation.target
    return {
        "case": case.name,
        "region_channel": REGIONS[channel],
        "target_voxels": int(target.sum()),
        "target_ml": float(target.sum() * case.grid.voxel_volume_ml),
        "box_model_grid": [[b.start, b.stop] for b in crop.box],
        "modalities": list(explanation.modalities),
        "shares": explanation.shares,
        "effects": explanation.effects,
        "faithfulness": faith,
        "score": {
            "clean": faith["fused"]["clean_score"],
            "all_inputs_healthy": faith["fused"]["baseline_score"],
            "informative": faith["fused"]["informative"],
        },
        "parameters": {
            "block_voxels": list(BLOCK),
            "margin_voxels": list(MARGIN),
            "noise_sigma": NOISE,
            "stability_draws": STABILITY_DRAWS,
            "curve_points": CURVE_POINTS,
            "on_target_mm": ON_TARGET_MM,
            "seed": seed,
            "pipeline_effects": pipeline_effects,
            "maps_measured": list(explanation.faithfulness),
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }


def caveat(summary: dict) -> str | None:
    """A plain-language warning when the maps cannot say much about this region (None otherwise)."""
    score = summary["score"]
    if score["informative"]:
        return None
    return (
        f"the fused head's {summary['region_channel']} probability here hardly depends on the inputs around the "
        f"region ({score['clean']:.3f} with them, {score['all_inputs_healthy']:.3f} with all set to healthy "
        "tissue): this uncertainty comes from the sampler, and the attribution maps say little about it; the "
        "whole-pipeline effects still apply"
    )
