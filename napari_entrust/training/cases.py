"""Training cases: phantoms or labelled folders, normalised and resampled to the model grid.

Phantom cases keep all their raters; each epoch draws one rater per case (:mod:`.crops`), so in
conflict regions the targets disagree across epochs and the diffusion model learns both answers.
Folder cases (BraTS / MSD layouts) have one label map, used as a single rater.

With a cache folder, cases are kept in an on-disk store (:mod:`.case_store`) and read lazily, so
hundreds of cases, or a dataset the size of BraTS, train in flat memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
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
from .case_store import StoredCase, store_case, stored_case
from .crop_centres import CropCentres, find_crop_centres

#: phantom seeds: training from 1000, calibration from 5000; benchmarks use 9000 and up (never trained on)
TRAIN_SEED0, CALIBRATION_SEED0, HELD_OUT_SEED0 = 1000, 5000, 9000


@dataclass
class TrainingCase:
    """One training case on the model grid: normalised images and every rater's labels."""

    name: str
    images: np.ndarray  #: (M, X, Y, Z) float32, normalised, on the model grid
    raters: np.ndarray  #: (R, X, Y, Z) uint8, internal labels
    stats: dict  #: modality -> (low, high) intensities used by normalisation
    _centres: CropCentres | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def n_raters(self) -> int:
        return len(self.raters)

    def crop_centres(self) -> CropCentres:
        """Where crops of this case may be centred (found on first use)."""
        if self._centres is None:
            self._centres = find_crop_centres(self.images, self.raters)
        return self._centres


#: a case held in memory or read lazily from a store; both have the same attributes
AnyCase = TrainingCase | StoredCase


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
        key = f"phantom-v{GENERATOR_VERSION}{tag}-s{seed}-{spacing}mm"
        case = _cached(cache_dir, key)
        if case is None:
            ph = make_phantom(seed=seed, spacing=spacing, domain=domain)
            case = _to_training_case(ph.to_case(), ph.raters, model_spacing)
            if cache_dir is not None:
                case = store_case(cache_dir, key, case)
        out.append(case)
    return out


def _cached(cache_dir: str | Path | None, key: str) -> AnyCase | None:
    """The case cached as ``key``: from the store, or from a cache of earlier versions (moved into the store)."""
    if cache_dir is None:
        return None
    case = stored_case(cache_dir, key)
    legacy = Path(cache_dir) / f"{key}.npz"  # the cache before the store: one .npz per case
    if case is None and legacy.exists():
        with np.load(legacy) as z:
            stats = {m: tuple(z[f"stats_{m}"]) for m in MODALITIES}
            case = store_case(cache_dir, key, TrainingCase(str(z["name"]), z["images"], z["raters"], stats))
        legacy.unlink()
    return case


def folder_cases(paths, model_spacing: float = 2.0, cache_dir: str | Path | None = None) -> list[AnyCase]:
    """Labelled cases from disk (any layout :func:`napari_entrust.io.loader.load_case` reads).

    With ``cache_dir``, each case is prepared once and read lazily from the store afterwards; a
    case whose files change (size or modification time) is prepared again.
    """
    out = []
    for path in paths:
        key = _folder_key(Path(path), model_spacing)
        cached = _cached(cache_dir, key)
        if cached is not None:
            out.append(cached)
            continue
        case = load_case(path)
        if case.labels is None:
            raise InputError(path, "has no label map (*_seg / labelsTr); training needs labels")
        prepared = _to_training_case(case, case.labels[None], model_spacing)
        out.append(store_case(cache_dir, key, prepared) if cache_dir is not None else prepared)
    return out


def _folder_key(path: Path, model_spacing: float) -> str:
    """A store key for a labelled case: its resolved path and its files' sizes and times."""
    # an MSD image's label map lies in ../labelsTr under the same name
    files = sorted(path.rglob("*")) if path.is_dir() else [path, path.parent.parent / "labelsTr" / path.name]
    h = hashlib.sha256(f"{path.resolve()}|{model_spacing}".encode())
    for f in files:
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"case-{h.hexdigest()[:16]}"
