"""Random 2-D training crops with each modality's scanner "style" (MONAI intensity transforms).

A quarter of the crops are centred where raters disagree (the ambiguity the diffusion model must
learn), most of the rest on the lesion; each epoch draws one rater per case. Each crop also says
where its case's raters disagree: raters disagree exactly where the modalities do (the generator's
disagreement events), which is what the conflict head learns to find.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from monai.transforms import (
    Compose,
    RandAdjustContrast,
    RandBiasField,
    RandGaussianNoise,
    RandGaussianSmooth,
    RandScaleIntensity,
    RandShiftIntensity,
)

from ..io.labels import to_regions
from ..io.modalities import MODALITIES
from .cases import AnyCase

NO_RATERS = -1.0  #: ``disputed`` of a case with a single rater: unknown, left out of the conflict target


class Crops(NamedTuple):
    """A batch of training crops."""

    x: torch.Tensor  #: (B, M, 2c+1, P, P) normalised intensities
    y: torch.Tensor  #: (B, 3, P, P) the drawn rater's WT / TC / ET
    brain: torch.Tensor  #: (B, P, P) bool, inside the head
    disputed: torch.Tensor  #: (B, P, P) 1 where the case's raters disagree, 0 elsewhere, NO_RATERS if it has one

    def to(self, device: torch.device) -> Crops:
        return Crops(*(v.to(device) for v in self))


def style_augmentation(seed: int) -> Compose:
    """Per-modality scanner "style": gamma/contrast, bias field, noise, blur, scale and shift."""
    t = Compose(
        [
            RandAdjustContrast(prob=0.5, gamma=(0.7, 1.5)),
            RandBiasField(prob=0.3, coeff_range=(0.0, 0.2)),
            RandGaussianSmooth(prob=0.2, sigma_x=(0.3, 0.9), sigma_y=(0.3, 0.9)),
            RandGaussianNoise(prob=0.3, std=0.03),
            RandScaleIntensity(prob=0.5, factors=0.15),
            RandShiftIntensity(prob=0.3, offsets=0.05),
        ]
    )
    t.set_random_state(seed=seed)
    return t


class CropSampler:
    """Random training crops (:class:`Crops`)."""

    def __init__(
        self,
        cases: list[AnyCase],
        context: int,
        crop: int,
        *,
        lesion_fraction: float = 0.8,
        conflict_fraction: float = 0.0,
        seed: int = 0,
        augment: bool = True,
    ):
        if not cases:
            raise ValueError("no training cases")
        self.cases, self.context, self.crop = cases, context, crop
        self.lesion_fraction, self.conflict_fraction, self.augment = lesion_fraction, conflict_fraction, augment
        self.rng = np.random.default_rng(seed)
        self.styles = [style_augmentation(seed * 10 + m) for m in range(len(MODALITIES))]
        self.raters = np.zeros(len(cases), dtype=int)
        self.new_epoch()

    def new_epoch(self) -> None:
        """Draw one rater per case for this epoch."""
        self.raters = np.array([self.rng.integers(c.n_raters) for c in self.cases])

    def _one(self):
        ci = int(self.rng.integers(len(self.cases)))
        case = self.cases[ci]
        images, labels = case.images, case.raters[self.raters[ci]]  # a stored case is opened here, per crop
        _, nx, ny, nz = images.shape
        p = self.crop
        centres = case.crop_centres()  # lesion per rater, brain, and where the raters disagree
        lesion, disputed = centres.lesion[self.raters[ci]], centres.disputed
        draw = self.rng.random()
        if len(disputed) and draw < self.conflict_fraction:
            cx, cy, z = disputed[self.rng.integers(len(disputed))] + np.r_[self.rng.integers(-p // 4, p // 4 + 1, 2), 0]
        elif len(lesion) and draw < self.conflict_fraction + self.lesion_fraction:
            cx, cy, z = lesion[self.rng.integers(len(lesion))] + np.r_[self.rng.integers(-p // 4, p // 4 + 1, 2), 0]
        else:
            cx, cy, z = (int(v) for v in centres.brain[self.rng.integers(len(centres.brain))])
        x0 = int(np.clip(cx - p // 2, 0, max(nx - p, 0)))
        y0 = int(np.clip(cy - p // 2, 0, max(ny - p, 0)))
        zs = np.clip(np.arange(z - self.context, z + self.context + 1), 0, nz - 1)
        x = np.zeros((len(MODALITIES), len(zs), p, p), np.float32)
        patch = images[:, x0 : x0 + p, y0 : y0 + p][..., zs]  # (M, px, py, 2c+1)
        x[:, :, : patch.shape[1], : patch.shape[2]] = patch.transpose(0, 3, 1, 2)
        y = np.zeros((3, p, p), np.float32)
        reg = to_regions(labels[x0 : x0 + p, y0 : y0 + p, z])
        y[:, : reg.shape[1], : reg.shape[2]] = reg
        d = np.full((p, p), NO_RATERS if case.n_raters < 2 else 0.0, np.float32)
        if case.n_raters >= 2:
            all_raters = case.raters[:, x0 : x0 + p, y0 : y0 + p, z]
            d[: all_raters.shape[1], : all_raters.shape[2]] = all_raters.min(0) != all_raters.max(0)
        if self.augment and self.rng.random() < 0.5:  # left-right flip
            x, y, d = x[..., ::-1, :].copy(), y[..., ::-1, :].copy(), d[::-1].copy()
        return x, y, d

    def batch(self, n: int) -> Crops:
        xs, ys, ds = zip(*(self._one() for _ in range(n)))
        x = np.stack(xs)  # (B, M, 2c+1, P, P)
        if self.augment:  # one scanner "style" per modality per batch; background stays 0
            for m, style in enumerate(self.styles):
                flat = x[:, m].reshape(-1, *x.shape[-2:])
                x[:, m] = (np.asarray(style(flat), dtype=np.float32) * (flat > 0)).reshape(x[:, m].shape)
        x = torch.from_numpy(x)
        brain = (x[:, :, self.context] != 0).any(1)
        return Crops(x, torch.from_numpy(np.stack(ys)), brain, torch.from_numpy(np.stack(ds)))
