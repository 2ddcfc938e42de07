"""Training data: cases on the model grid, and random 2-D crops with augmentation.

Phantom cases keep all their raters; each epoch draws one rater per case, so in conflict regions
the targets disagree across epochs and the diffusion model learns both answers. Folder cases
(BraTS / MSD layouts) have one label map, used as a single rater.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.transforms import (Compose, RandAdjustContrast, RandBiasField, RandGaussianNoise, RandGaussianSmooth,
                              RandScaleIntensity, RandShiftIntensity)

from .errors import InputError
from .io import load_case
from .labels import to_regions
from .modalities import MODALITIES
from .normalize import normalize_case
from .phantom import GENERATOR_VERSION, make_phantom
from .slices import model_grid_shape, resample

#: phantom seeds: training from 1000, calibration from 5000; benchmarks use 9000 and up (never trained on)
TRAIN_SEED0, CALIBRATION_SEED0, HELD_OUT_SEED0 = 1000, 5000, 9000


@dataclass
class TrainingCase:
    name: str
    images: np.ndarray  #: (M, X, Y, Z) float32, normalised, on the model grid
    raters: np.ndarray  #: (R, X, Y, Z) uint8, internal labels
    stats: dict  #: modality -> (low, high) intensities used by normalisation


def _to_training_case(case, raters: np.ndarray, model_spacing: float) -> TrainingCase:
    normed, stats = normalize_case(case)
    images = torch.from_numpy(np.stack([normed[m] for m in MODALITIES]))
    shape = model_grid_shape(case.shape, case.spacing, model_spacing)
    images = resample(images, shape).numpy()
    raters = resample(torch.from_numpy(raters.astype(np.float32)), shape, mode="nearest").numpy().astype(np.uint8)
    return TrainingCase(case.name, images.astype(np.float32), raters,
                        {m: (s.low, s.high) for m, s in stats.items()})


def phantom_cases(seeds, spacing: int = 2, model_spacing: float = 2.0, cache_dir: str | Path | None = None,
                  progress: Callable[[float, str], None] | None = None) -> list[TrainingCase]:
    """Phantom training cases, generated once and cached as ``.npz`` when ``cache_dir`` is given."""
    seeds = list(seeds)
    out = []
    for i, seed in enumerate(seeds):
        if progress:
            progress(i / max(len(seeds), 1), f"phantom {seed}")
        cached = Path(cache_dir) / f"phantom-v{GENERATOR_VERSION}-s{seed}-{spacing}mm.npz" if cache_dir else None
        if cached is not None and cached.exists():
            with np.load(cached) as z:
                stats = {m: tuple(z[f"stats_{m}"]) for m in MODALITIES}
                out.append(TrainingCase(str(z["name"]), z["images"], z["raters"], stats))
            continue
        ph = make_phantom(seed=seed, spacing=spacing)
        case = _to_training_case(ph.to_case(), ph.raters, model_spacing)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.stem}.{os.getpid()}.tmp.npz")  # ranks may race: unique name
            np.savez(tmp, name=case.name, images=case.images, raters=case.raters,
                     **{f"stats_{m}": np.array(case.stats[m]) for m in MODALITIES})
            tmp.replace(cached)
        out.append(case)
    return out


def folder_cases(paths, model_spacing: float = 2.0) -> list[TrainingCase]:
    """Labelled cases from disk (any layout :func:`napari_entrust.io.load_case` reads)."""
    out = []
    for path in paths:
        case = load_case(path)
        if case.labels is None:
            raise InputError(path, "has no label map (*_seg / labelsTr); training needs labels")
        out.append(_to_training_case(case, case.labels[None], model_spacing))
    return out


def style_augmentation(seed: int) -> Compose:
    """Per-modality scanner "style": gamma/contrast, bias field, noise, blur, scale and shift."""
    t = Compose([
        RandAdjustContrast(prob=0.5, gamma=(0.7, 1.5)),
        RandBiasField(prob=0.3, coeff_range=(0.0, 0.2)),
        RandGaussianSmooth(prob=0.2, sigma_x=(0.3, 0.9), sigma_y=(0.3, 0.9)),
        RandGaussianNoise(prob=0.3, std=0.03),
        RandScaleIntensity(prob=0.5, factors=0.15),
        RandShiftIntensity(prob=0.3, offsets=0.05),
    ])
    t.set_random_state(seed=seed)
    return t


class CropSampler:
    """Random training crops: (x, y, brain) with x (B, M, 2c+1, P, P) and y (B, 3, P, P)."""

    def __init__(self, cases: list[TrainingCase], context: int, crop: int, *, lesion_fraction: float = 0.8,
                 conflict_fraction: float = 0.0, seed: int = 0, augment: bool = True):
        if not cases:
            raise ValueError("no training cases")
        self.cases, self.context, self.crop = cases, context, crop
        self.lesion_fraction, self.conflict_fraction, self.augment = lesion_fraction, conflict_fraction, augment
        self.rng = np.random.default_rng(seed)
        self.styles = [style_augmentation(seed * 10 + m) for m in range(len(MODALITIES))]
        self.raters = np.zeros(len(cases), dtype=int)
        # where lesion (per case and rater) and brain voxels are, found once instead of per crop
        self._lesion = [[np.argwhere(r > 0) for r in c.raters] for c in cases]
        self._brain = [np.argwhere(c.images[0] > 0)[::7] for c in cases]
        # where raters disagree: the ambiguity the diffusion model must learn, sampled on purpose
        self._disputed = [np.argwhere(c.raters.min(0) != c.raters.max(0)) for c in cases]
        self.new_epoch()

    def new_epoch(self) -> None:
        """Draw one rater per case for this epoch."""
        self.raters = np.array([self.rng.integers(len(c.raters)) for c in self.cases])

    def _one(self):
        ci = int(self.rng.integers(len(self.cases)))
        case = self.cases[ci]
        labels = case.raters[self.raters[ci]]
        _, nx, ny, nz = case.images.shape
        p = self.crop
        lesion = self._lesion[ci][self.raters[ci]]
        draw = self.rng.random()
        if len(self._disputed[ci]) and draw < self.conflict_fraction:
            disputed = self._disputed[ci]
            cx, cy, z = disputed[self.rng.integers(len(disputed))] + np.r_[self.rng.integers(-p // 4, p // 4 + 1, 2), 0]
        elif len(lesion) and draw < self.conflict_fraction + self.lesion_fraction:
            cx, cy, z = lesion[self.rng.integers(len(lesion))] + np.r_[self.rng.integers(-p // 4, p // 4 + 1, 2), 0]
        else:
            cx, cy, z = self._brain[ci][self.rng.integers(len(self._brain[ci]))]
        x0 = int(np.clip(cx - p // 2, 0, max(nx - p, 0)))
        y0 = int(np.clip(cy - p // 2, 0, max(ny - p, 0)))
        zs = np.clip(np.arange(z - self.context, z + self.context + 1), 0, nz - 1)
        x = np.zeros((len(MODALITIES), len(zs), p, p), np.float32)
        patch = case.images[:, x0:x0 + p, y0:y0 + p][..., zs]  # (M, px, py, 2c+1)
        x[:, :, :patch.shape[1], :patch.shape[2]] = patch.transpose(0, 3, 1, 2)
        y = np.zeros((3, p, p), np.float32)
        reg = to_regions(labels[x0:x0 + p, y0:y0 + p, z])
        y[:, :reg.shape[1], :reg.shape[2]] = reg
        if self.augment and self.rng.random() < 0.5:  # left-right flip
            x, y = x[..., ::-1, :].copy(), y[..., ::-1, :].copy()
        return x, y

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, ys = zip(*(self._one() for _ in range(n)))
        x = np.stack(xs)  # (B, M, 2c+1, P, P)
        if self.augment:  # one scanner "style" per modality per batch; background stays 0
            for m, style in enumerate(self.styles):
                flat = x[:, m].reshape(-1, *x.shape[-2:])
                x[:, m] = (np.asarray(style(flat), dtype=np.float32) * (flat > 0)).reshape(x[:, m].shape)
        x = torch.from_numpy(x)
        return x, torch.from_numpy(np.stack(ys)), (x[:, :, self.context] != 0).any(1)
