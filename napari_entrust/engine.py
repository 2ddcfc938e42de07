"""Run EnTrust on one case: the path from a loaded :class:`Case` to every output map.

normalise → model grid → encoders + EnFuse once per slice, on the head's in-plane box (chunked
under a memory budget) → region of interest from the fused head → K hypotheses × S DDIM steps on
that region (chunked) → TrustMap statistics → calibration head → back to the case grid.
:func:`run_prediction` is a generator that yields ``(fraction, message)`` and returns the
:class:`Prediction`, so the same code drives the CLI's progress bar, napari's progress bar (in a
thread worker) and tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from . import validity
from .case import Case
from .checkpoint import ModelBundle
from .config import SamplingConfig
from .diffusion import sample, slice_noise
from .errors import Cancelled, InputError
from .labels import REGION_LABELS, REGIONS, from_regions, region_votes, to_regions
from .model import channel_norm
from .slices import case_volume, encoder_input, from_model_grid, head_box, head_voxels, resample
from .trust import case_score, trust_statistics, trustmap
from .validity import ValidityReport

ROI_THRESHOLD = 0.3  #: fused-head WT probability above which a voxel may be tumour
ROI_MIN_VOXELS = 10  #: smaller candidate specks are ignored (0.08 mL at 2 mm)
ROI_MARGIN = 4  #: model-grid voxels added around the candidates


def region_of_interest(fused_wt: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Where hypotheses are drawn: candidate tumour from the fused head, specks removed, grown by a margin."""
    candidates = (fused_wt >= ROI_THRESHOLD) & head
    labelled, n = ndimage.label(candidates)
    if n:
        sizes = ndimage.sum_labels(candidates, labelled, index=np.arange(1, n + 1))
        candidates = np.isin(labelled, 1 + np.flatnonzero(sizes >= ROI_MIN_VOXELS))
    if not candidates.any():
        return candidates
    # dilate only the candidates' bounding box grown by the margin: the same result, 4× faster
    bounds = ndimage.find_objects(candidates.view(np.uint8))[0]  # a view: no copy of the volume
    box = tuple(slice(max(s.start - ROI_MARGIN, 0), s.stop + ROI_MARGIN) for s in bounds)
    roi = np.zeros_like(candidates)
    roi[box] = ndimage.binary_dilation(candidates[box], iterations=ROI_MARGIN) & head[box]
    return roi


@dataclass
class Prediction:
    """Every output on the case grid (RAS+), and the summary written to ``summary.json``."""

    mask: np.ndarray  #: uint8 labels (BraTS 2021 convention): majority vote of the hypotheses per region
    prob: np.ndarray  #: (3, X, Y, Z) calibrated WT/TC/ET probabilities
    samples: np.ndarray  #: (K, X, Y, Z) uint8 label maps, one per hypothesis
    trustmap: np.ndarray  #: calibrated uncertainty in [0, 1]
    entropy: np.ndarray  #: total entropy H(p̄), max over regions, in bits
    mutual_info: np.ndarray  #: MI, max over regions
    probe: np.ndarray  #: sensitivity of p̄ to F_cf (probe strength ε), max over regions
    consensus: np.ndarray  #: ‖F_c‖
    conflict: np.ndarray  #: ‖F_cf‖
    specific: dict[str, np.ndarray]  #: modality -> ‖F_u,m‖
    weights: dict[str, np.ndarray]  #: modality -> w_m
    validity: ValidityReport | None = None  #: is the input like the training data? (never silently ignored)
    summary: dict = field(default_factory=dict)


def _slices_per_chunk(bytes_per_slice: float, memory_mb: float) -> int:
    return max(1, int(memory_mb * 2 ** 20 // max(bytes_per_slice, 1)))


def run_prediction(case: Case, bundle: ModelBundle, sampling: SamplingConfig | None = None, *,
                   memory_mb: float = 1024, should_stop: Callable[[], bool] | None = None,
                   fixed: np.ndarray | None = None, fixed_labels: np.ndarray | None = None,
                   ) -> Generator[tuple[float, str], None, Prediction]:
    """Segment ``case``; yields ``(fraction, message)``, returns the :class:`Prediction`.

    ``fixed`` (bool, case grid) and ``fixed_labels`` (internal labels, case grid) hold voxels a user
    has decided: they are imposed at every denoising step (inpainting), so the rest of each
    hypothesis settles consistently with them, and they come back unchanged and certain.
    """
    sampling = sampling or SamplingConfig()
    sampling.validate()
    cfg, net = bundle.config, bundle.net
    missing = [m for m in cfg.modalities if m not in case.images]
    if missing:
        raise InputError(case.name, f"the model needs {', '.join(cfg.modalities)}; missing {', '.join(missing)}")
    if fixed is not None:
        fixed = np.asarray(fixed, dtype=bool)
        if fixed_labels is None or fixed.shape != case.shape or np.shape(fixed_labels) != case.shape:
            raise InputError(case.name, f"fixed voxels and their labels must both have the case's shape {case.shape}")
        fixed_labels = np.asarray(fixed_labels, dtype=np.uint8)
    device = next(net.parameters()).device
    stop = should_stop or (lambda: False)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def check_stop():
        if stop():
            raise Cancelled("cancelled by the user")

    yield 0.0, "normalising"
    volume, grid = case_volume(case, cfg.modalities, cfg.spacing_mm)
    checks = [validity.geometry_checks(case.shape, case.spacing)]
    if bundle.validity:
        checks.append(validity.intensity_checks(volume.numpy(), cfg.modalities, bundle.validity))
    timings["normalise_s"] = time.perf_counter() - t0
    nx, ny, nz = grid
    m = len(cfg.modalities)

    # 1. encoders + EnFuse, once per slice
    t = time.perf_counter()
    n_cond = cfg.consensus_channels + m * cfg.specific_channels + cfg.conflict_channels
    fused_wt = np.zeros(grid, np.float32)
    maps = {k: np.zeros(grid, np.float32) for k in ("consensus", "conflict")}
    specific = np.zeros((m, *grid), np.float32)
    weights = np.zeros((m, *grid), np.float32)
    head_3d, head_slices = head_voxels(volume)
    bx, by = head_box(head_3d)  # only the head is encoded; everything else stays 0
    hx, hy = bx.stop - bx.start, by.stop - by.start
    cond = torch.zeros((nz, n_cond, hx, hy))  # the denoiser's conditioning, on the head's box
    per_slice = hx * hy * 4 * (m * cfg.in_slices + m * sum(cfg.encoder_channels) * 6 + n_cond * 2)
    chunk = _slices_per_chunk(per_slice, memory_mb)
    pooled = []  # per-slice mean EnFuse features, for the input-validity check

    def unpad(a: torch.Tensor) -> np.ndarray:  # (B, ..., H, W) -> (..., hx, hy, B) without padding
        return np.moveaxis(a[..., :hx, :hy].float().cpu().numpy(), 0, -1)

    with torch.inference_mode():
        for i in range(0, len(head_slices), chunk):
            check_stop()
            zs = head_slices[i:i + chunk]
            # consecutive slices as a slice: numpy and torch copy into a view, not by fancy indexing
            zi = slice(zs[0], zs[-1] + 1) if zs[-1] - zs[0] + 1 == len(zs) else zs
            f = net.features(encoder_input(volume, zs, cfg.context, (bx, by), net.size_multiple).to(device))
            condition = f.condition(sampling.conflict_scale)[..., :hx, :hy].float().cpu()
            cond[zi] = condition
            if bundle.validity:
                full = condition if sampling.conflict_scale == 1 else f.condition()[..., :hx, :hy].float().cpu()
                pooled.append(validity.pooled_features(full, head_3d[bx, by][..., zs].permute(2, 0, 1)))
            fused_wt[bx, by, zi] = unpad(torch.sigmoid(f.fused_logits[:, 0]))
            maps["consensus"][bx, by, zi] = unpad(channel_norm(f.consensus))
            maps["conflict"][bx, by, zi] = unpad(channel_norm(f.conflict) * abs(sampling.conflict_scale))
            specific[:, bx, by, zi] = unpad(channel_norm(f.specific, 2))
            weights[:, bx, by, zi] = unpad(f.weights)
            yield 0.05 + 0.25 * (i + len(zs)) / len(head_slices), f"encoding slices {zs[0] + 1}-{zs[-1] + 1} of {nz}"
    head = head_3d.numpy()
    for a in (*maps.values(), specific, weights):  # features of the background mean nothing: shown as 0
        a *= head
    timings["encode_s"] = time.perf_counter() - t
    if bundle.validity:
        checks.append(validity.feature_check(torch.cat(pooled) if pooled else torch.zeros((0, n_cond)),
                                             bundle.validity))
    report = validity.report(*checks)

    # 2. hypotheses on the region where the fused head sees possible tumour
    t = time.perf_counter()
    k = sampling.samples
    prob = np.zeros((3, *grid), np.float32)
    region_samples = np.zeros((k, 3, *grid), bool)
    stats_max = {name: np.zeros(grid, np.float32) for name in ("entropy", "mutual_info", "probe")}
    roi_mask = region_of_interest(fused_wt, head)
    known_model = None
    if fixed is not None and fixed.any():
        known_model, known_regions = _on_model_grid(fixed, to_regions(fixed_labels), grid)
        roi_mask |= ndimage.binary_dilation(known_model, iterations=ROI_MARGIN) & head
    # one box per connected part of the region: cost follows the region's volume, not its spread
    parts, _ = ndimage.label(roi_mask)
    boxes = [b for b in ndimage.find_objects(parts) if b is not None]
    total_slices = sum(b[2].stop - b[2].start for b in boxes)
    done = 0
    with torch.inference_mode():
        for part, (sx, sy, sz) in enumerate(boxes, start=1):
            h, w = sx.stop - sx.start, sy.stop - sy.start
            inside = parts[sx, sy, sz] == part  # write only this part's voxels
            per_slice = k * h * w * 4 * (3 * (sampling.steps + 1) + cfg.denoiser_channels * 8 + 3 * 6)
            chunk = _slices_per_chunk(per_slice, memory_mb)
            for z0 in range(sz.start, sz.stop, chunk):
                check_stop()
                zs = list(range(z0, min(z0 + chunk, sz.stop)))
                c = cond[zs[0]:zs[-1] + 1, :, sx.start - bx.start:sx.stop - bx.start,
                         sy.start - by.start:sy.stop - by.start].to(device)  # a view; the ROI lies in the head box
                # the noise of a slice depends on the seed, the slice and the box, never on chunking
                noise = torch.empty((len(zs), sampling.steps + 1, k, 3, h, w))
                for j, z in enumerate(zs):
                    slice_noise(sampling.seed, (z * 4099 + sx.start) * 4099 + sy.start, sampling.steps, k, (h, w),
                                out=noise[j])
                known = values = jump_noise = None
                if known_model is not None and known_model[sx, sy][..., zs].any():
                    if sampling.inpaint_jumps and sampling.steps > 1:
                        jump_noise = torch.stack([slice_noise(sampling.seed + 7919, (z * 4099 + sx.start) * 4099 + sy.start,
                                                              (sampling.steps - 1) * sampling.inpaint_jumps - 1, k, (h, w))
                                                  for z in zs])
                    known = torch.from_numpy(np.ascontiguousarray(known_model[sx, sy][..., zs].transpose(2, 0, 1)))
                    known = known[:, None].expand(-1, 3, -1, -1)
                    values = torch.from_numpy(np.ascontiguousarray(known_regions[:, sx, sy][..., zs].transpose(3, 0, 1, 2)))
                hyp = sample(net, bundle.schedule, c, noise, eta=sampling.eta, probe_strength=sampling.probe_strength,
                             probe_steps=sampling.probe_steps, known=known, known_values=values,
                             jump_noise=jump_noise, should_stop=stop)
                cf = torch.from_numpy(maps["conflict"][sx, sy][..., zs].transpose(2, 0, 1)).to(device)
                stats = trust_statistics(hyp.probs, hyp.probe_plus, hyp.probe_minus, cf, sampling.probe_strength,
                                         hyp.first_step)
                calibrated = torch.sigmoid(bundle.calibration(stats)) if sampling.calibrate else stats[:, :, 0]
                sel = inside[..., [z - sz.start for z in zs]]  # (h, w, len(zs))

                def put(target: np.ndarray, values: np.ndarray) -> None:  # values (..., h, w, len(zs))
                    view = target[..., sx, sy, zs[0]:zs[-1] + 1]
                    view[..., sel] = values[..., sel]

                put(prob, calibrated.cpu().numpy().transpose(1, 2, 3, 0))
                put(region_samples, (hyp.probs > 0.5).cpu().numpy().transpose(1, 2, 3, 4, 0))
                for j, name in ((1, "entropy"), (3, "mutual_info"), (4, "probe")):
                    put(stats_max[name], stats[:, :, j].amax(1).cpu().numpy().transpose(1, 2, 0))
                done += len(zs)
                yield 0.3 + 0.6 * done / max(total_slices, 1), \
                    f"sampling {k} hypotheses x {sampling.steps} steps, slice {done} of {total_slices}"
    timings["sample_s"] = time.perf_counter() - t

    # 3. back to the case grid
    t = time.perf_counter()
    yield 0.92, "assembling outputs"
    shape = case.shape

    def back(a: np.ndarray) -> np.ndarray:
        return from_model_grid(a, grid, shape)

    prob_c = back(prob)
    same_grid = tuple(grid) == tuple(shape)
    drawn: tuple[slice, ...] = (slice(None),)  # where hypotheses can be non-zero (before fixed voxels)
    if same_grid and boxes:  # hypotheses are drawn only inside the ROI boxes: their union
        drawn += tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3))
    if same_grid:
        sample_labels = np.zeros((k, *shape), np.uint8)
        sample_labels[drawn] = from_regions(region_samples[(slice(None), slice(None), *drawn[1:])].swapaxes(0, 1))
    else:  # one hypothesis at a time, so a 1 mm case never holds K × 3 float volumes at once
        sample_labels = np.stack([from_regions(back(region_samples[j].astype(np.float32))) for j in range(k)])
    if fixed is not None:  # the user's decisions come back exactly, and certain
        sample_labels[:, fixed] = fixed_labels[fixed]
        prob_c[:, fixed] = to_regions(fixed_labels[fixed])
    # the mask is the hypotheses' majority vote per region; prob (calibrated) feeds the TrustMap
    mask = from_regions(region_votes(sample_labels) > k / 2)
    trust = trustmap(prob_c).astype(np.float32)
    voxel_ml = case.grid.voxel_volume_ml
    counted = sample_labels if fixed is not None else sample_labels[drawn]  # fixed voxels may lie anywhere
    counts = np.stack([np.bincount(s.ravel(), minlength=5) for s in counted])  # (K, label values)
    sample_ml = {r: counts[:, list(REGION_LABELS[r])].sum(1) * voxel_ml for r in REGIONS}
    timings["assemble_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    stats_c = {name: back(v) for name, v in stats_max.items()}
    if fixed is not None:
        for v in stats_c.values():
            v[fixed] = 0.0
    pred = Prediction(
        mask=mask, prob=prob_c.astype(np.float32), samples=sample_labels, trustmap=trust,
        entropy=stats_c["entropy"], mutual_info=stats_c["mutual_info"], probe=stats_c["probe"],
        consensus=back(maps["consensus"]), conflict=back(maps["conflict"]),
        specific={mod: back(specific[i]) for i, mod in enumerate(cfg.modalities)},
        weights={mod: back(weights[i]) for i, mod in enumerate(cfg.modalities)},
        validity=report,
    )
    pred.summary = {
        "case": case.name,
        "case_score": case_score(trust, prob_c[0], sample_ml["WT"]),
        "validity": report.to_dict(),
        "volumes_ml": {r: {"mask": float((prob_c[i] > 0.5).sum() * voxel_ml), "mean": float(sample_ml[r].mean()),
                           "std": float(sample_ml[r].std()), "min": float(sample_ml[r].min()),
                           "max": float(sample_ml[r].max())} for i, r in enumerate(REGIONS)},
        "timings_s": {key: round(v, 3) for key, v in timings.items()},
        "device": str(device),
        "model": {"path": str(bundle.path), "sha256": bundle.sha256},
        "parameters": {"samples": k, "steps": sampling.steps, "eta": sampling.eta,
                       "probe_strength": sampling.probe_strength, "probe_steps": sampling.probe_steps,
                       "seed": sampling.seed, "conflict_scale": sampling.conflict_scale, "calibrate": sampling.calibrate,
                       "memory_mb": memory_mb,
                       "fixed_voxels": int(fixed.sum()) if fixed is not None else 0,
                       "inpaint_jumps": sampling.inpaint_jumps},
        "model_grid": {"shape": list(grid), "spacing_mm": cfg.spacing_mm,
                       "region_of_interest": [[[s.start, s.stop] for s in b] for b in boxes]},
        "inputs": {**case.sources, **({"labels": case.label_source} if case.label_source else {})},
    }
    yield 1.0, "done"
    return pred


def _on_model_grid(fixed: np.ndarray, regions: np.ndarray, grid) -> tuple[np.ndarray, np.ndarray]:
    """Fixed voxels and their region values on the model grid (a model voxel is fixed if mostly fixed)."""
    if tuple(fixed.shape) == tuple(grid):
        return fixed, regions
    both = torch.from_numpy(np.concatenate([fixed[None], regions]).astype(np.float32))
    out = resample(both, tuple(grid)).numpy() > 0.5
    return out[0], out[1:]


def predict_case(case: Case, bundle: ModelBundle, sampling: SamplingConfig | None = None, *,
                 progress: Callable[[float, str], None] | None = None, **kwargs) -> Prediction:
    """Run :func:`run_prediction` to the end, reporting progress through a callback."""
    return run_to_end(run_prediction(case, bundle, sampling, **kwargs), progress)


def run_to_end(gen: Generator, progress: Callable[[float, str], None] | None = None):
    """Drive a ``(fraction, message)``-yielding generator to the end; return what it returns."""
    while True:
        try:
            fraction, message = next(gen)
        except StopIteration as done:
            return done.value
        if progress:
            progress(fraction, message)

