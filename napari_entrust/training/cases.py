"""Training cases: phantoms or labelled folders, normalised and resampled to the model grid.

Phantom cases keep all their raters; each epoch draws one rater per case (:mod:`.crops`), so in
conflict regions the targets disagree across epochs and the diffusion model learns both answers.
Folder cases (BraTS / MSD layouts) have one label map, used as a single rater.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..inference.normalize import normalize_case
from ..inference.slices import model_grid_shape, resample
from ..io.loader import load_case
from ..io.modalities import MODALITIES
from ..phantom.domain import cache_tag
from ..phantom.phantom import GENERATOR_VERSION, make_phantom
from ..progress import Steps, run_to_end

#: phantom seeds: training from 1000, calibration from 5000; benchmarks use 9000 and up (never trained on)
TRAIN_SEED0, CALIBRATION_SEED0, HELD_OUT_SEED0 = 1000, 5000, 9000


@dataclass
class TrainingCase:
    """One training case on the model grid: normalised images and every rater's labels."""

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
    return TrainingCase(case.name, images.astype(np.float32), raters, {m: (s.low, s.high) for m, s in stats.items()})


def phantom_cases(
    seeds,
    spacing: int = 2,
    model_spacing: float = 2.0,
    cache_dir: str | Path | None = None,
    domain: str = "standard",
) -> list[TrainingCase]:
    """:func:`generate_phantom_cases` without progress."""
    return run_to_end(generate_phantom_cases(seeds, spacing, model_spacing, cache_dir, domain))


def generate_phantom_cases(
    seeds,
    spacing: int = 2,
    model_spacing: float = 2.0,
    cache_dir: str | Path | None = None,
    domain: str = "standard",
) -> Steps[list[TrainingCase]]:
    """Phantom training cases, generated once and cached as ``.npz`` when ``cache_dir`` is given.

    ``domain``: ``standard`` (the sample's protocol) or ``randomised`` (:mod:`..phantom.domain`).
    """
    seeds = list(seeds)
    out = []
    tag = cache_tag(domain)
    for i, seed in enumerate(seeds):
        yield i / max(len(seeds), 1), f"phantom {seed}"
        cached = Path(cache_dir) / f"phantom-v{GENERATOR_VERSION}{tag}-s{seed}-{spacing}mm.npz" if cache_dir else None
        if cached is not None and cached.exists():
            with np.load(cached) as z:
                stats = {m: tuple(z[f"stats_{m}"]) for m in MODALITIES}
                out.append(TrainingCase(str(z["name"]), z["images"], z["raters"], stats))
            continue
        ph = make_phantom(seed=seed, spacing=spacing, domain=domain)
        case = _to_training_case(ph.to_case(), ph.raters, model_spacing)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.stem}.{os.getpid()}.tmp.npz")  # ranks may race: unique name
            np.savez(
                tmp,
                name=case.name,
                images=case.images,
                raters=case.raters,
                **{f"stats_{m}": np.array(case.stats[m]) for m in MODALITIES},
            )
            tmp.replace(cached)
        out.append(case)
    return out


def folder_cases(paths, model_spacing: float = 2.0) -> list[TrainingCase]:
    """Labelled cases from disk (any layout :func:`napari_entrust.io.loader.load_case` reads)."""
    out = []
    for path in paths:
        case = load_case(path)
        if case.labels is None:
            raise InputError(path, "has no label map (*_seg / labelsTr); training needs labels")
        out.append(_to_training_case(case, case.labels[None], model_spacing))
    return out
