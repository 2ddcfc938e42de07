"""An on-disk store of training cases, read lazily: training on hundreds of cases in flat memory.

Each case is three files: its normalised images and its raters as ``.npy`` (memory-mapped on every
read, so only the crop being cut is paged in and nothing stays resident between crops) and its crop
centres as ``.npz``. A case is written to temporary names and renamed, the centres last, so a
killed build leaves no case that looks complete; the next build writes it again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.files import atomic_write, write_text
from .crop_centres import CropCentres, find_crop_centres

CENTRES = ".centres.npz"


@dataclass(frozen=True)
class StoredCase:
    """A training case in a store; ``images`` and ``raters`` are opened (memory-mapped) on each access."""

    folder: Path
    key: str  #: the file names' stem in ``folder``
    name: str  #: the case's own name
    stats: dict  #: modality -> (low, high), as :class:`~.cases.TrainingCase`
    n_raters: int

    @property
    def images(self) -> np.ndarray:
        return np.load(self.folder / f"{self.key}.images.npy", mmap_mode="r")

    @property
    def raters(self) -> np.ndarray:
        return np.load(self.folder / f"{self.key}.raters.npy", mmap_mode="r")

    def crop_centres(self) -> CropCentres:
        with np.load(self.folder / f"{self.key}{CENTRES}") as z:
            return CropCentres.from_arrays(z, self.n_raters)


def _meta_file(folder: Path, key: str) -> Path:
    return folder / f"{key}.case.json"


def stored_case(folder: str | os.PathLike, key: str) -> StoredCase | None:
    """The case stored as ``key`` in ``folder``, or None when it is not (completely) there."""
    folder = Path(folder)
    if not (folder / f"{key}{CENTRES}").exists():  # written last: its presence means the rest is there
        return None
    meta = json.loads(_meta_file(folder, key).read_text())
    stats = {m: tuple(v) for m, v in meta["stats"].items()}
    return StoredCase(folder, key, meta["name"], stats, int(meta["n_raters"]))


def store_case(folder: str | os.PathLike, key: str, case) -> StoredCase:
    """Write one :class:`~.cases.TrainingCase` under ``key`` and return it, read lazily from now on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = np.ascontiguousarray(case.images, dtype=np.float32)
    raters = np.ascontiguousarray(case.raters, dtype=np.uint8)
    stats = {m: [float(v) for v in s] for m, s in case.stats.items()}
    meta = {"name": case.name, "stats": stats, "n_raters": len(raters)}
    # overwrite: ranks of one run may write the same case at once (the same content)
    atomic_write(folder / f"{key}.images.npy", lambda p: np.save(p, images), overwrite=True)
    atomic_write(folder / f"{key}.raters.npy", lambda p: np.save(p, raters), overwrite=True)
    write_text(_meta_file(folder, key), json.dumps(meta), overwrite=True)
    centres = find_crop_centres(images, raters)
    atomic_write(folder / f"{key}{CENTRES}", lambda p: np.savez(p, **centres.as_arrays()), overwrite=True)
    return stored_case(folder, key)
