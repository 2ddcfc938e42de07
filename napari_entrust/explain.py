"""Why is a region uncertain? Per-modality attribution by gradients and by intervention, their fusion,
and measured faithfulness (deletion, insertion, off-target leakage, robustness).

The maps explain the **target score**: the fused head's mean probability of the target's region
channel (WT, TC or ET) over the target voxels. The fused head reads the consensus features F_c
the denoiser is conditioned on; it is deterministic and costs one encoder pass, so a deletion
curve of dozens of points is affordable where re-sampling K hypotheses each time is not. The
whole pipeline is intervened on once per modality as well (:func:`modality_effects`): how the
TrustMap and the mask in the target change when that modality is replaced.

All maps live on the model grid inside a box around the target (target + :data:`MARGIN`), over
the elements (modality, voxel) of the head; everything outside the box is 0.

- **gradient**: Grad-CAM (``monai.visualize.GradCAM``) on each modality's encoder output, with a
  segmentation target wrapper (:class:`TargetLogit`: the fused logit summed over the target).
- **intervention**: occlusion. Modality m's intensities in one block of :data:`BLOCK` voxels are
  replaced by its healthy-tissue value (the median over the head) and the drop of the target score,
  per voxel of the block, is the attribution of those voxels.
- **fused** (dual evidence): with ĝ, î the positive parts of the two maps scaled to unit mass,
  F = (1 − w/2)·î + (w/2)·ĝ, w = agreement × gradient stability, agreement = 1 − |rank ĝ − rank î|
  (percentile ranks over the elements) and stability = 1 − min(1, CV of the Grad-CAM over
  :data:`STABILITY_DRAWS` noisy inputs). Where the gradient is stable and agrees with the
  intervention, F averages the two (and the gradient orders the voxels inside a block, where î is
  flat); where it is unstable or disagrees, F is the intervention evidence alone.

Faithfulness follows the protocol of seed 003: deletion and insertion curves (elements replaced by,
or restored from, their healthy-tissue value in order of attribution; the target score rescaled to
1 for the clean input and 0 with every element replaced, :data:`CURVE_POINTS` points, AUC by the
trapezoid rule), off-target leakage (share of
attribution mass farther than :data:`ON_TARGET_MM` from the target) and robustness (Spearman
correlation between the map and the map of the input with Gaussian noise of :data:`NOISE` σ).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import rankdata, spearmanr

from .case import Case
from .checkpoint import ModelBundle
from .config import SamplingConfig
from .engine import Prediction, run_prediction
from .errors import Cancelled, InputError
from .labels import REGIONS
from .evaluation import write_json
from .nifti import check_writable
from .slices import bounding_box, case_volume, context_stack, from_model_grid, head_voxels, pad_to_multiple, resample

METHODS = ("gradient", "intervention", "fused", "random")  #: random: the floor every map must beat
BLOCK = (4, 4, 2)  #: smallest occlusion block in model voxels (8 × 8 × 4 mm at 2 mm)
MAX_BLOCKS = 250  #: per modality; larger targets get proportionally larger blocks
MARGIN = (6, 6, 2)  #: model voxels around the target that may hold evidence
CROP = 12  #: extra in-plane voxels the encoders see around the box (their receptive field)
NOISE = 0.05  #: robustness perturbation: σ in normalised-intensity units (about 5 % of tissue contrast)
STABILITY_DRAWS = 3
CURVE_POINTS = 11
MIN_EFFECT = 0.02  #: score change (clean − all inputs at healthy tissue) below which maps say little
ON_TARGET_MM = 4.0  #: attribution this close to the target counts as on target (partial volume at 2 mm)


class TargetLogit(torch.nn.Module):
    """Segmentation target wrapper for Grad-CAM: (B, M, ctx, H, W) -> (B, 1) fused logit summed over the target."""

    def __init__(self, net: torch.nn.Module, channel: int):
        super().__init__()
        self.net = net
        self.channel = channel

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # through each encoder module (not the folded fast path of ``features``): Grad-CAM hooks them
        logits = self.net.enfuse(self.net.encode(x)).fused_logits[:, self.channel]
        return (logits * target).sum((1, 2))[:, None]


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


# -- the target score on a crop of the model grid ------------------------------------------------

class _Crop:
    """The box around the target, the crop the encoders see, and the target score over it."""

    def __init__(self, volume: torch.Tensor, target: np.ndarray, head: np.ndarray, bundle: ModelBundle, channel: int,
                 memory_mb: float):
        self.net, self.cfg, self.channel = bundle.net, bundle.config, channel
        self.device = next(self.net.parameters()).device
        box = bounding_box(target, 0)
        shape = target.shape
        margin = (MARGIN[0], MARGIN[1], max(MARGIN[2], self.cfg.context))
        self.box = tuple(slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, shape))
        # the encoders see the box plus CROP voxels in-plane and every context slice
        self.crop = (slice(max(self.box[0].start - CROP, 0), min(self.box[0].stop + CROP, shape[0])),
                     slice(max(self.box[1].start - CROP, 0), min(self.box[1].stop + CROP, shape[1])),
                     self.box[2])  # MARGIN[2] >= context: the scored slices' neighbours are inside
        self.volume = volume[(slice(None), *self.crop)].clone()  # (M, cx, cy, cz)
        self.target = torch.from_numpy(target[self.crop].copy())
        self.zs = [z for z in range(self.target.shape[2]) if self.target[..., z].any()]  # slices scored
        #: elements that may be attributed: head voxels of the box, every modality
        inner = np.zeros(self.target.shape, bool)
        inner[tuple(slice(b.start - c.start, b.stop - c.start) for b, c in zip(self.box, self.crop))] = True
        self.elements = np.broadcast_to(inner & head[self.crop], self.volume.shape).copy()
        self.baseline = torch.tensor([float(volume[m][torch.from_numpy(head)].median())
                                      for m in range(volume.shape[0])])
        per_slice = 4 * self.volume.shape[1] * self.volume.shape[2] * 4 * (self.cfg.in_slices + sum(self.cfg.encoder_channels) * 6)
        self.chunk = max(1, int(memory_mb * 2 ** 20 // per_slice))
        self._target_slices: torch.Tensor | None = None

    def stacks(self, volume: torch.Tensor) -> torch.Tensor:
        """(M, cx, cy, cz) -> padded (len(zs), M, ctx, H, W) context stacks of the scored slices."""
        x, _ = pad_to_multiple(context_stack(volume, self.zs, self.cfg.context), self.net.size_multiple)
        return x

    def target_slices(self) -> torch.Tensor:
        """(len(zs), H, W) target of the scored slices, padded like :meth:`stacks`."""
        if self._target_slices is None:
            t = self.target[..., self.zs].permute(2, 0, 1).float()
            x = self.stacks(self.volume[:, :, :, :1])
            self._target_slices = torch.nn.functional.pad(t, (0, x.shape[-1] - t.shape[-1], 0, x.shape[-2] - t.shape[-2]))
        return self._target_slices

    def scores(self, volumes: list[torch.Tensor]) -> np.ndarray:
        """Target score (mean fused probability over the target) of each modified crop volume."""
        rows = torch.arange(len(self.zs))
        total = float(self.target.sum())
        return np.asarray([float(self.contributions(self.encode(v), rows).sum()) / total for v in volumes])

    def encode(self, volume: torch.Tensor) -> torch.Tensor:
        """Each modality's encoder output for the scored slices: (slices, M, C, H, W)."""
        x = self.stacks(volume)
        parts = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], self.chunk):
                xi = x[i:i + self.chunk].to(self.device)
                parts.append(self.net.encode(xi))
        return torch.cat(parts)

    def contributions(self, f: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Σ over the target of the fused probability, per scored slice ``rows`` (encoder outputs ``f``)."""
        with torch.inference_mode():
            p = torch.sigmoid(self.net.enfuse(f).fused_logits[:, self.channel])
            return (p * self.target_slices().to(self.device)[rows]).sum((1, 2)).float().cpu()

    def with_baseline(self, where: np.ndarray) -> torch.Tensor:
        """A copy of the crop volume with the elements ``where`` (M, cx, cy, cz) set to the healthy-tissue value."""
        v = self.volume.clone()
        w = torch.from_numpy(where)
        v[w] = self.baseline[:, None, None, None].expand_as(v)[w]
        return v


# -- the two sources of evidence -----------------------------------------------------------------

def gradient_mapper(crop: _Crop) -> Callable[[torch.Tensor], np.ndarray]:
    """Grad-CAM of the target logit on each modality's encoder output: volume -> (M, cx, cy, cz), ≥ 0.

    MONAI's hooks are registered on a copy of the network, so the model in use stays hook-free.
    """
    from monai.visualize import GradCAM

    modalities = len(crop.cfg.modalities)
    wrapper = TargetLogit(copy.deepcopy(crop.net), crop.channel)
    cam = GradCAM(nn_module=wrapper, target_layers=[f"net.encoders.{m}" for m in range(modalities)],
                  postprocessing=lambda a: a)
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
                    part = cam.compute_map(x[i:i + crop.chunk], class_idx=0, layer_idx=m,
                                           target=target[i:i + crop.chunk])
                    out[m][..., crop.zs[i:i + crop.chunk]] = part[:, 0, :cx, :cy].detach().cpu().numpy().transpose(1, 2, 0)
        return np.where(crop.elements, out, 0.0).astype(np.float32)

    return compute


def block_size(box: tuple[slice, ...]) -> tuple[int, int, int]:
    """:data:`BLOCK`, grown until the box holds at most :data:`MAX_BLOCKS` blocks."""
    sizes = [b.stop - b.start for b in box]
    scale = 1.0
    while True:
        block = tuple(int(np.ceil(s * scale)) for s in BLOCK)
        if np.prod([-(-n // k) for n, k in zip(sizes, block)]) <= MAX_BLOCKS:
            return block
        scale += 0.25


def intervention_map(crop: _Crop, volume: torch.Tensor) -> Generator[tuple[float, str], None, np.ndarray]:
    """Occlusion: drop of the target score per voxel when a block of one modality is set to healthy tissue.

    Only the occluded modality's encoder is re-run, and only on the scored slices whose context
    holds the block. Yields progress; returns the (M, cx, cy, cz) map.
    """
    out = np.zeros(volume.shape, np.float32)
    block = block_size(crop.box)
    ctx = crop.cfg.context
    features = crop.encode(volume)
    clean_rows = crop.contributions(features, torch.arange(len(crop.zs)))
    total = float(crop.target.sum())
    local = [range(b.start - c.start, b.stop - c.start, k) for b, c, k in zip(crop.box, crop.crop, block)]
    ends = [b.stop - c.start for b, c in zip(crop.box, crop.crop)]
    blocks = [[(m, slice(x0, min(x0 + block[0], ends[0])), slice(y0, min(y0 + block[1], ends[1])),
                slice(z0, min(z0 + block[2], ends[2])))
               for x0 in local[0] for y0 in local[1] for z0 in local[2]] for m in range(volume.shape[0])]
    blocks = [[sel for sel in mine if crop.elements[sel].any()] for mine in blocks]  # per modality
    zs = np.asarray(crop.zs)
    count, done = sum(map(len, blocks)), 0
    for m, mine in enumerate(blocks):
        for start in range(0, len(mine), 8):
            batch = mine[start:start + 8]
            stacks, rows, owner = [], [], []
            for b, (_, sx, sy, sz) in enumerate(batch):
                affected = np.flatnonzero((zs >= sz.start - ctx) & (zs < sz.stop + ctx))
                if affected.size == 0:
                    continue  # no scored slice sees this block: no effect
                v = volume[m].clone()
                v[sx, sy, sz] = torch.where(torch.from_numpy(crop.elements[(m, sx, sy, sz)]), crop.baseline[m],
                                            v[sx, sy, sz])
                stacks.append(context_stack(v[None], zs[affected].tolist(), ctx)[:, 0])
                rows += affected.tolist()
                owner += [b] * len(affected)
            drops = torch.zeros(len(batch))
            if rows:
                x, _ = pad_to_multiple(torch.cat(stacks), crop.net.size_multiple)
                rows_t = torch.as_tensor(rows, dtype=torch.long)
                with torch.inference_mode():
                    f = features[rows_t].clone()
                    f[:, m] = crop.net.encoders[m](x.to(crop.device))
                change = crop.contributions(f, rows_t) - clean_rows[rows_t]
                drops = -drops.index_add_(0, torch.as_tensor(owner, dtype=torch.long), change) / total
            for sel, drop in zip(batch, drops.tolist()):
                inside = crop.elements[sel]
                out[sel] = np.where(inside, drop / inside.sum(), 0.0)
            done += len(batch)
            yield done / count, f"occluding block {done} of {count}"
    return out


def percentile_rank(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Each element's rank among ``where`` scaled to (0, 1] (ties share their mean rank); 0 elsewhere."""
    out = np.zeros(values.shape, np.float64)
    out[where] = rankdata(values[where]) / max(int(where.sum()), 1)
    return out


def fuse(gradient: np.ndarray, intervention: np.ndarray, stability: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Dual-evidence fusion: F = (1 − w/2)·î + (w/2)·ĝ with w = (1 − |rank ĝ − rank î|) · stability.

    ĝ, î: the positive parts of the two maps, each scaled to unit mass over ``where``. Agreement
    compares percentile ranks (scale-free). F keeps attribution units, is 0 where neither source
    sees evidence, and equals the intervention evidence where the gradient is unstable or disagrees.
    """
    def unit(a: np.ndarray) -> np.ndarray:
        a = np.where(where, np.clip(a, 0, None), 0.0)
        total = a.sum()
        return a / total if total > 0 else a

    g, i = unit(gradient), unit(intervention)
    w = (1 - np.abs(percentile_rank(g, where) - percentile_rank(i, where))) * stability
    return np.where(where, (1 - w / 2) * i + (w / 2) * g, 0.0).astype(np.float32)


def gradient_stability(crop: _Crop, draws: list[np.ndarray]) -> np.ndarray:
    """1 − min(1, coefficient of variation) of the Grad-CAM over noisy inputs, per element."""
    stack = np.stack(draws)
    mean, std = stack.mean(0), stack.std(0)
    cv = np.where(mean > 0, std / np.maximum(mean, 1e-12), 1.0)
    return np.where(crop.elements, 1 - np.minimum(cv, 1.0), 0.0)


# -- faithfulness ----------------------------------------------------------------------------------

def _order(attribution: np.ndarray, where: np.ndarray, seed: int) -> np.ndarray:
    """Flat indices of the elements, most attributed first (ties in a seeded random order)."""
    idx = np.flatnonzero(where)
    tie = np.random.default_rng(seed).random(idx.size)
    return idx[np.lexsort((tie, -attribution.ravel()[idx]))]


def curves(crop: _Crop, attribution: np.ndarray, seed: int = 0) -> dict:
    """Deletion and insertion curves of the target score and their AUCs.

    Scores are rescaled so that the clean input is 1 and every element at its healthy-tissue value
    is 0 (deletion runs 1 → 0, insertion 0 → 1), which keeps AUCs comparable between regions whose
    probability is high and regions where it is near 0. ``informative`` is False when the box's
    inputs move the score by less than :data:`MIN_EFFECT`: then no map can say much.
    """
    order = _order(attribution, crop.elements, seed)
    fractions = np.linspace(0, 1, CURVE_POINTS)
    counts = np.round(fractions * order.size).astype(int)
    deleted, inserted = [crop.volume], []
    for n in counts:
        top = np.zeros(crop.volume.shape, bool)
        top.ravel()[order[:n]] = True
        if n:
            deleted.append(crop.with_baseline(top))
        inserted.append(crop.with_baseline(crop.elements & ~top))
    raw_deletion, raw_insertion = crop.scores(deleted), crop.scores(inserted)
    clean, base = float(raw_deletion[0]), float(raw_insertion[0])  # all inputs / none of them
    effect = clean - base
    scale = effect if abs(effect) > 1e-9 else float("nan")
    dele, ins = (raw_deletion - base) / scale, (raw_insertion - base) / scale
    return {"fractions": fractions.tolist(), "deletion": dele.tolist(), "insertion": ins.tolist(),
            "deletion_auc": float(np.trapezoid(dele, fractions)), "insertion_auc": float(np.trapezoid(ins, fractions)),
            "clean_score": clean, "baseline_score": base, "informative": bool(abs(effect) >= MIN_EFFECT)}


def leakage(attribution: np.ndarray, target: np.ndarray, spacing_mm: float) -> float:
    """Share of the positive attribution mass farther than :data:`ON_TARGET_MM` from the target."""
    steps = int(round(ON_TARGET_MM / spacing_mm))
    near = ndimage.binary_dilation(target, iterations=steps) if steps > 0 else target
    mass = np.clip(attribution, 0, None)
    total = float(mass.sum())
    return float(mass[:, ~near].sum() / total) if total > 0 else 0.0


def robustness(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Spearman correlation of two maps over the elements."""
    rho = spearmanr(a[where], b[where]).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def shares(attribution: np.ndarray, modalities) -> dict[str, float]:
    """Each modality's share of the positive attribution mass (sums to 1; even split when there is none)."""
    mass = np.clip(attribution, 0, None).reshape(len(modalities), -1).sum(1)
    total = float(mass.sum())
    return {m: (float(v) / total if total > 0 else 1 / len(modalities)) for m, v in zip(modalities, mass)}


# -- the whole pipeline, one modality replaced ---------------------------------------------------

def _rescaled(gen: Generator, start: float, span: float, prefix: str = "",
              should_stop: Callable[[], bool] | None = None) -> Generator[tuple[float, str], None, object]:
    """Re-yield a progress generator's ``(fraction, message)`` as ``start + span·fraction``; return its value."""
    while True:
        try:
            fraction, message = next(gen)
        except StopIteration as done:
            return done.value
        if should_stop and should_stop():
            raise Cancelled("cancelled by the user")
        yield start + span * fraction, prefix + message


def _case_box(crop: _Crop, grid, shape) -> tuple[slice, ...]:
    """The model-grid box on the case grid (rounded outwards)."""
    scale = [s / g for s, g in zip(shape, grid)]
    return tuple(slice(int(np.floor(b.start * f)), int(np.ceil(b.stop * f))) for b, f in zip(crop.box, scale))


def modality_effects(case: Case, bundle: ModelBundle, sampling: SamplingConfig, prediction: Prediction,
                     target: np.ndarray, box: tuple[slice, ...], *, memory_mb: float = 1024,
                     should_stop: Callable[[], bool] | None = None) -> Generator[tuple[float, str], None, dict]:
    """Re-run the prediction with each modality set to its healthy-tissue value inside ``box`` (case grid).

    Returns modality -> change of the mean TrustMap over the target (new − old) and the share of the
    box's voxels whose mask label changed.
    """
    effects = {}
    mods = bundle.config.modalities
    for j, mod in enumerate(mods):
        image = case.images[mod].copy()
        head = image != 0
        region = np.zeros(image.shape, bool)
        region[box] = True
        image[region & head] = float(np.median(case.images[mod][head]))
        changed = Case(case.name, {**case.images, mod: image}, case.grid, layout=case.layout, sources=case.sources)
        pred = yield from _rescaled(run_prediction(changed, bundle, sampling, memory_mb=memory_mb,
                                                   should_stop=should_stop),
                                    j / len(mods), 1 / len(mods), f"without {mod}: ")
        effects[mod] = {
            "trustmap_change": float(pred.trustmap[target].mean() - prediction.trustmap[target].mean()),
            "mask_change": float((pred.mask[box] != prediction.mask[box]).mean()),
        }
    return effects


# -- targets and the whole explanation -------------------------------------------------------------

def region_channel(prob: np.ndarray, target: np.ndarray) -> int:
    """The region channel (WT/TC/ET) that is most uncertain over the target."""
    uncertainty = [float((1 - np.abs(2 * prob[c][target] - 1)).mean()) for c in range(prob.shape[0])]
    return int(np.argmax(uncertainty))


def explain(case: Case, bundle: ModelBundle, prediction: Prediction, target: np.ndarray, *,
            channel: int | None = None, sampling: SamplingConfig | None = None, memory_mb: float = 1024,
            pipeline_effects: bool = True, seed: int = 0, should_stop: Callable[[], bool] | None = None,
            ) -> Generator[tuple[float, str], None, Explanation]:
    """Explain ``prediction`` over ``target`` (bool, case grid); yields progress, returns an :class:`Explanation`.

    ``channel``: region channel (0 WT, 1 TC, 2 ET); default the most uncertain one over the target.
    ``pipeline_effects``: also re-run the prediction once per modality (:func:`modality_effects`).
    """
    target = np.asarray(target, bool)
    if target.shape != case.shape:
        raise InputError(case.name, f"the target region has shape {target.shape}, the case {case.shape}")
    if not target.any():
        raise InputError(case.name, "the target region is empty")
    stop = should_stop or (lambda: False)
    cfg = bundle.config
    channel = region_channel(prediction.prob, target) if channel is None else channel
    share = 0.5 if pipeline_effects else 1.0  # of the progress bar, for the maps
    t0 = time.perf_counter()

    def step(fraction: float, message: str) -> tuple[float, str]:
        if stop():
            raise Cancelled("cancelled by the user")
        return fraction * share, message

    yield step(0.0, "preparing")
    volume, grid = case_volume(case, cfg.modalities, cfg.spacing_mm)
    head, _ = head_voxels(volume)
    soft = resample(torch.from_numpy(target[None].astype(np.float32)), grid)[0].numpy()
    model_target = soft > 0.5 if (soft > 0.5).any() else soft > 0  # smaller than a model voxel: what it touches
    crop = _Crop(volume, model_target, head.numpy(), bundle, channel, memory_mb)
    rng = torch.Generator().manual_seed(seed)
    head_crop = torch.from_numpy(head.numpy()[crop.crop])

    def noisy() -> torch.Tensor:
        return crop.volume + NOISE * torch.randn(crop.volume.shape, generator=rng) * head_crop

    yield step(0.02, "gradients (Grad-CAM)")
    grad_cam = gradient_mapper(crop)
    noisy_volume = noisy()
    grad, noisy_grad = grad_cam(crop.volume), grad_cam(noisy_volume)
    draws = [grad_cam(noisy()) for _ in range(STABILITY_DRAWS - 1)]
    occlusion = {}
    for name, vol, lo in (("clean", crop.volume, 0.05), ("noisy", noisy_volume, 0.35)):
        occlusion[name] = yield from _rescaled(intervention_map(crop, vol), lo * share, 0.3 * share,
                                               f"intervention{' (noisy input)' if name == 'noisy' else ''}: ", stop)
    where = crop.elements
    maps = {"gradient": grad, "intervention": occlusion["clean"],
            "fused": fuse(grad, occlusion["clean"], gradient_stability(crop, [grad, noisy_grad, *draws]), where),
            "random": np.where(where, np.random.default_rng(seed).random(where.shape), 0.0)}
    noisy_maps = {"gradient": noisy_grad, "intervention": occlusion["noisy"],
                  "fused": fuse(noisy_grad, occlusion["noisy"], gradient_stability(crop, [noisy_grad, grad, *draws]),
                                where),
                  "random": np.where(where, np.random.default_rng(seed + 1).random(where.shape), 0.0)}
    faith = {}
    for i, method in enumerate(METHODS):
        yield step(0.65 + 0.35 * i / len(METHODS), f"faithfulness of the {method} map")
        faith[method] = {**curves(crop, maps[method], seed),
                         "leakage": leakage(maps[method], crop.target.numpy(), cfg.spacing_mm),
                         "robustness": robustness(maps[method], noisy_maps[method], where)}
    full = {}  # back to the case grid
    for method in ("gradient", "intervention", "fused"):
        on_grid = np.zeros((len(cfg.modalities), *grid), np.float32)
        on_grid[(slice(None), *crop.crop)] = maps[method]
        full[method] = from_model_grid(on_grid, grid, case.shape).astype(np.float32)
    explanation = Explanation(maps=full, target=target, modalities=tuple(cfg.modalities),
                              shares={m: shares(maps[m], cfg.modalities) for m in ("gradient", "intervention", "fused")},
                              faithfulness=faith)
    if pipeline_effects:
        explanation.effects = yield from _rescaled(
            modality_effects(case, bundle, sampling or SamplingConfig(), prediction, target,
                             _case_box(crop, grid, case.shape), memory_mb=memory_mb, should_stop=stop), 0.5, 0.5)
    explanation.summary = {
        "case": case.name, "region_channel": REGIONS[channel], "target_voxels": int(target.sum()),
        "target_ml": float(target.sum() * case.grid.voxel_volume_ml),
        "box_model_grid": [[b.start, b.stop] for b in crop.box], "modalities": list(cfg.modalities),
        "shares": explanation.shares, "effects": explanation.effects, "faithfulness": faith,
        "score": {"clean": faith["fused"]["clean_score"], "all_inputs_healthy": faith["fused"]["baseline_score"],
                  "informative": faith["fused"]["informative"]},
        "parameters": {"block_voxels": list(BLOCK), "margin_voxels": list(MARGIN), "noise_sigma": NOISE,
                       "stability_draws": STABILITY_DRAWS, "curve_points": CURVE_POINTS, "on_target_mm": ON_TARGET_MM,
                       "seed": seed, "pipeline_effects": pipeline_effects},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    yield 1.0, "done"
    return explanation


# -- targets a user can name, and the files written ------------------------------------------------

def choose_target(prediction: Prediction, voxel_ml: float, region: str = "1") -> tuple[np.ndarray, str]:
    """``region``: ``lesion`` (the predicted tumour) or N, the N-th most uncertain region of the review
    table (:func:`napari_entrust.review.find_uncertain_regions`). Returns the mask and a description."""
    from .review import find_uncertain_regions

    if region == "lesion":
        mask = prediction.mask > 0
        if not mask.any():
            raise InputError(None, "the prediction holds no tumour; choose an uncertain region instead of 'lesion'")
        return mask, "the predicted lesion"
    try:
        number = int(region)
    except ValueError:
        raise InputError(None, f"--region must be 'lesion' or a region number (1 = most uncertain), got {region!r}") \
            from None
    regions = find_uncertain_regions(prediction.trustmap, voxel_ml=voxel_ml, weights=prediction.weights,
                                     specific=prediction.specific, conflict=prediction.conflict)
    if not 1 <= number <= len(regions):
        raise InputError(None, f"region {number} does not exist: the prediction has {len(regions)} uncertain regions")
    r = regions[number - 1]
    return r.full_mask(prediction.trustmap.shape), f"uncertain region {number} ({r.size_ml:.2f} mL, {r.why})"


def output_files(out_dir: str | Path) -> dict[str, Path]:
    """The files :func:`write_explanation` writes (checked before any work is done)."""
    out_dir = Path(out_dir)
    files = {f"attribution_{m}": out_dir / f"attribution_{m}.nii.gz" for m in ("gradient", "intervention", "fused")}
    files["target"] = out_dir / "target.nii.gz"
    files["explanation"] = out_dir / "explanation.json"
    return files


def write_explanation(case: Case, explanation: Explanation, out_dir: str | Path, *,
                      overwrite: bool = False) -> dict[str, Path]:
    """The three attribution maps (4-D, one volume per modality), the target mask and explanation.json."""
    files = output_files(out_dir)
    check_writable(list(files.values()), overwrite)
    order = ", ".join(explanation.modalities)
    for method, data in explanation.maps.items():
        case.write(np.moveaxis(data, 0, -1), files[f"attribution_{method}"], overwrite=overwrite, dtype=np.float32,
                   description=f"{method} attribution: {order}")
    case.write(explanation.target.astype(np.uint8), files["target"], overwrite=overwrite, dtype=np.uint8,
               description="explained region")
    summary = {**explanation.summary, "files": {k: p.name for k, p in files.items()}}
    write_json(files["explanation"], summary, overwrite)  # NaN (a region no input moves) becomes null
    return files


def caveat(summary: dict) -> str | None:
    """A plain-language warning when the maps cannot say much about this region (None otherwise)."""
    score = summary["score"]
    if score["informative"]:
        return None
    return (f"the fused head's {summary['region_channel']} probability here hardly depends on the inputs around the "
            f"region ({score['clean']:.3f} with them, {score['all_inputs_healthy']:.3f} with all set to healthy "
            "tissue): this uncertainty comes from the sampler, and the attribution maps say little about it; the "
            "whole-pipeline effects still apply")
