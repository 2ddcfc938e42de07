"""Real brain anatomy for the phantom: the MNI ICBM152 2009a maps shipped inside nilearn's wheel.

No download: the files are part of the installed ``nilearn`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..errors import EntrustError

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


@dataclass(frozen=True)
class Anatomy:
    """Tissue fractions (float32, sum ≤ 1) on the 1 mm MNI grid (RAS+), and that grid's affine."""

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray  #: bool
    affine: np.ndarray


def nilearn_data_dir() -> Path:
    """Where the installed nilearn keeps the MNI templates."""
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data"


@lru_cache(maxsize=1)
def load_mni_anatomy() -> Anatomy:
    """GM and WM fractions from the templates; CSF = brain − GM − WM (brain = T1 template > 0)."""
    folder = nilearn_data_dir()
    maps = {}
    for key, name in _FILES.items():
        path = folder / name
        if not path.exists():
            raise EntrustError(
                f"{path}: MNI ICBM152 2009a map missing from the nilearn package; "
                "install nilearn >= 0.11 (it ships these files in its wheel)"
            )
        img = nib.as_closest_canonical(nib.load(str(path)))
        maps[key] = np.asarray(img.dataobj, dtype=np.float32)
        affine = img.affine
    brain = ndimage.binary_fill_holes(maps["t1"] > 0)
    gm = maps["gm"] / 255.0 * brain
    wm = maps["wm"] / 255.0 * brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0).astype(np.float32)
    for a in (gm, wm, csf):
        a.setflags(write=False)
    return Anatomy(gm.astype(np.float32), wm.astype(np.float32), csf, brain, np.asarray(affine))
