"""Run EnTrust on one case: the path from a loaded :class:`Case` to every output map.

normalise → model grid (:mod:`.slices`) → encoders + EnFuse once per slice (:mod:`.encoding`)
→ region of interest from the fused head (:mod:`.roi`) → K hypotheses × S DDIM steps on that
region, TrustMap statistics and calibration (:mod:`.hypotheses`) → back to the case grid
(:mod:`.assembly`). :func:`run_prediction` is a generator that yields ``(fraction, message)`` and
returns the :class:`Prediction`, so the same code drives the CLI's progress bar, napari's progress
bar (in a thread worker) and tests.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from ..io.case import Case
from ..io.labels import REGIONS, to_regions
from ..model.checkpoint import ModelBundle
from ..model.config import SamplingConfig
from ..model.trustmap import case_score
from ..progress import ShouldStop, Steps, rescaled, run_to_end
from . import validity
from .assembly import assemble, hypothesis_volumes_ml
from .encoding import Encoding, encode_volume
from .hypotheses import FixedVoxels, draw_hypotheses
from .prediction import Prediction
from .roi import box_on_model_grid, on_model_grid, region_boxes, region_of_interest, with_fixed_voxels
from .run_cache import RunCache, encoding_key, hypotheses_key, inputs_key
from .slices import case_volume, head_box, head_voxels


def run_prediction(
    case: Case,
    bundle: ModelBundle,
    sampling: SamplingConfig | None = None,
    *,
    memory_mb: float = 1024,
    should_stop: ShouldStop | None = None,
    fixed: np.ndarray | None = None,
    fixed_labels: np.ndarray | None = None,
    last_run: RunCache | None = None,
    within: tuple[slice, slice, slice] | None = None,
) -> Steps[Prediction]:
    """Segment ``case``; yields ``(fraction, message)``, returns the :class:`Prediction`.

    ``fixed`` (bool, case grid) and ``fixed_labels`` (internal labels, case grid) hold voxels a user
    has decided: they are imposed at every denoising step (inpainting), so the rest of each
    hypothesis settles consistently with them, and they come back unchanged and certain.
    ``last_run`` keeps the last normalised inputs, encoding and hypotheses and reuses them for the same
    inputs: re-sampling with edits normalises and encodes nothing, and draws only the slices that hold
    fixed voxels or whose region changed.
    ``within`` (case grid): hypotheses only where they reach this box, exactly as in a whole run there
    and 0 elsewhere (re-runs read only there: explanations).
    """
    sampling = sampling or SamplingConfig()
    sampling.validate()
    cfg = bundle.config
    fixed, fixed_labels = _checked_inputs(case, cfg.modalities, fixed, fixed_labels)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    yield 0.0, "normalising"
    inputs = inputs_key(case, bundle) if last_run is not None else ""
    volume, grid, checks = _normalised(case, bundle, last_run, inputs)
    timings["normalise_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    enc_key = encoding_key(inputs, bundle, sampling)
    encoding = _encoded(volume, bundle, sampling, memory_mb, should_stop, last_run, enc_key)
    enc = yield from rescaled(encoding, 0.05, 0.25, should_stop=should_stop)
    timings["encode_s"] = time.perf_counter() - t
    if bundle.validity:
        checks.append(validity.feature_check(enc.pooled, bundle.validity))
    report = validity.report(*checks)

    t = time.perf_counter()
    parts, boxes, known = _region(enc, grid, fixed, fixed_labels, bundle.config.conflict_head)
    drawn_key = hypotheses_key(enc_key, sampling)
    drawn = yield from rescaled(
        draw_hypotheses(
            enc,
            bundle,
            sampling,
            parts,
            boxes,
            fixed=known,
            memory_mb=memory_mb,
            should_stop=should_stop,
            within=None if within is None else box_on_model_grid(within, case.shape, grid),
            earlier=last_run.get("hypotheses", drawn_key) if last_run is not None else None,
        ),
        0.3,
        0.6,
        should_stop=should_stop,
    )
    timings["sample_s"] = time.perf_counter() - t
    if last_run is not None:
        last_run.keep("hypotheses", drawn_key, drawn)

    t = time.perf_counter()
    yield 0.92, "assembling outputs"
    pred, volumes = assemble(
        case, enc, drawn, cfg.modalities, fixed=fixed, fixed_labels=fixed_labels, whole_case=within is None
    )
    timings["assemble_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    pred.validity = report
    pred.summary = _summary(case, bundle, sampling, pred, volumes, timings, grid, boxes, memory_mb, fixed)
    yield 1.0, "done"
    return pred


def _region(
    enc: Encoding, grid, fixed, fixed_labels, conflict_head: bool
) -> tuple[np.ndarray, list, FixedVoxels | None]:
    """Where hypotheses are drawn (its parts and their boxes), and the fixed voxels on the model grid."""
    conflict = enc.conflict if conflict_head else None  # the head's probability, not ‖F_cf‖
    roi, known = region_of_interest(enc.fused_wt, enc.head, conflict), None
    if fixed is not None and fixed.any():
        known = FixedVoxels(*on_model_grid(fixed, to_regions(fixed_labels), grid))
        roi = with_fixed_voxels(roi, known.mask, enc.head)
    return (*region_boxes(roi), known)


def _normalised(case: Case, bundle: ModelBundle, last_run: RunCache | None, key: str) -> tuple:
    """The case's model-grid volume, that grid, and the input checks (a new list); the kept ones if
    ``last_run`` holds them under ``key``."""
    kept = last_run.get("normalised", key) if last_run is not None else None
    if kept is None:
        cfg = bundle.config
        volume, grid = case_volume(case, cfg.modalities, cfg.spacing_mm)
        _check_size(case, volume, bundle)
        checks = [
            validity.outline_check(case.images, case.spacing),
            validity.geometry_checks(case.shape, case.spacing),
            validity.noise_checks(volume.numpy(), cfg.modalities),
        ]
        if bundle.validity:
            checks.append(validity.intensity_checks(volume.numpy(), cfg.modalities, bundle.validity))
        kept = volume, grid, checks
        if last_run is not None:
            last_run.keep("normalised", key, kept)
    return kept[0], kept[1], list(kept[2])


def _encoded(
    volume, bundle: ModelBundle, sampling: SamplingConfig, memory_mb: float, should_stop, last_run, key: str
) -> Steps[Encoding]:
    """The encoders' output for ``volume``: the kept one if ``last_run`` holds it under ``key``."""
    enc = last_run.get("encoding", key) if last_run is not None else None
    if enc is None:
        enc = yield from encode_volume(volume, bundle, sampling, memory_mb=memory_mb, should_stop=should_stop)
        if last_run is not None:
            last_run.keep("encoding", key, enc)
    return enc


def predict_case(case: Case, bundle: ModelBundle, sampling: SamplingConfig | None = None, **kwargs) -> Prediction:
    """:func:`run_prediction` run to the end, for callers that show no progress."""
    return run_to_end(run_prediction(case, bundle, sampling, **kwargs))


def _checked_inputs(
    case: Case, modalities, fixed: np.ndarray | None, fixed_labels: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Refuse a case without the model's modalities, or fixed voxels not on the case's grid."""
    missing = [m for m in modalities if m not in case.images]
    if missing:
        raise InputError(case.name, f"the model needs {', '.join(modalities)}; missing {', '.join(missing)}")
    if fixed is None:
        return None, fixed_labels
    fixed = np.asarray(fixed, dtype=bool)
    if fixed_labels is None or fixed.shape != case.shape or np.shape(fixed_labels) != case.shape:
        raise InputError(case.name, f"fixed voxels and their labels must both have the case's shape {case.shape}")
    return fixed, np.asarray(fixed_labels, dtype=np.uint8)


def _check_size(case: Case, volume, bundle: ModelBundle) -> None:
    """Refuse a head too small in-plane for the encoders' down-sampling (naming the minimum)."""
    bx, by = head_box(head_voxels(volume)[0])
    least = bundle.net.size_multiple + 1
    size = (bx.stop - bx.start, by.stop - by.start)
    if min(size) < least:
        mm = bundle.config.spacing_mm
        raise InputError(
            case.grid.path,
            f"the head spans {size[0] * mm:g} × {size[1] * mm:g} mm in-plane; the model needs at least"
            f" {least * mm:g} mm ({least} voxels of {mm:g} mm) along each in-plane axis",
        )


def _summary(
    case: Case,
    bundle: ModelBundle,
    sampling: SamplingConfig,
    pred: Prediction,
    volumes: dict[str, np.ndarray],
    timings: dict[str, float],
    grid,
    boxes,
    memory_mb: float,
    fixed: np.ndarray | None,
) -> dict:
    """What ``summary.json`` says about a prediction: scores, volumes, timings, model and parameters."""
    voxel_ml = case.grid.voxel_volume_ml
    in_mask = hypothesis_volumes_ml(pred.mask[None], voxel_ml)  # the mask as written (parts without core left out)
    return {
        "case": case.name,
        "case_score": case_score(pred.trustmap, pred.prob[0], volumes["WT"]),
        "validity": pred.validity.to_dict(),
        "volumes_ml": {
            r: {
                "mask": float(in_mask[r][0]),
                "mean": float(volumes[r].mean()),
                "std": float(volumes[r].std()),
                "min": float(volumes[r].min()),
                "max": float(volumes[r].max()),
            }
            for r in REGIONS
        },
        "dropped_without_core_ml": round(pred.summary.get("dropped_without_core_ml", 0.0), 4),  # left out of the mask
        "timings_s": {key: round(v, 3) for key, v in timings.items()},
        "device": str(next(bundle.net.parameters()).device),
        "model": {"path": str(bundle.path), "sha256": bundle.sha256},
        "parameters": {
            "samples": sampling.samples,
            "steps": sampling.steps,
            "eta": sampling.eta,
            "probe_strength": sampling.probe_strength,
            "probe_steps": sampling.probe_steps,
            "seed": sampling.seed,
            "conflict_scale": sampling.conflict_scale,
            "calibrate": sampling.calibrate,
            "memory_mb": memory_mb,
            "fixed_voxels": int(fixed.sum()) if fixed is not None else 0,
            "inpaint_jumps": sampling.inpaint_jumps,
            "harmonised_steps": sampling.harmonised_steps,
        },
        "model_grid": {
            "shape": list(grid),
            "spacing_mm": bundle.config.spacing_mm,
            "region_of_interest": [[[s.start, s.stop] for s in b] for b in boxes],
        },
        "inputs": {**case.sources, **({"labels": case.label_source} if case.label_source else {})},
    }
