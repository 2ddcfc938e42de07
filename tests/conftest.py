"""Shared fixtures: phantom cases (generated once per session) and NIfTI writing helpers."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.phantom import make_phantom, save_phantom


@pytest.fixture(scope="session")
def phantom2():
    """A 2 mm phantom without misregistration, so per-voxel physics checks are clean."""
    return make_phantom(seed=11, spacing=2, misregistration=False)


@pytest.fixture(scope="session")
def phantom2_misregistered():
    return make_phantom(seed=11, spacing=2, misregistration=True)


@pytest.fixture(scope="session")
def phantom1():
    """The same seed at the native 1 mm grid."""
    return make_phantom(seed=11, spacing=1, misregistration=False)


@pytest.fixture(scope="session")
def brats_case_dir(tmp_path_factory, phantom2) -> Path:
    out = tmp_path_factory.mktemp("brats2021")
    save_phantom(phantom2, out, "brats2021")
    return out


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, *, codes: int = 1) -> Path:
    """Write ``data`` (file voxel order) with ``affine``; ``codes=0`` writes a file without usable affine."""
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.set_qform(affine, code=codes)
    img.set_sform(affine, code=codes)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def small_volume(shape=(12, 14, 10), seed=0) -> np.ndarray:
    """A positive, non-constant test volume with a zero border (like a skull-stripped head)."""
    rng = np.random.default_rng(seed)
    data = np.zeros(shape, dtype=np.float32)
    data[2:-2, 2:-2, 2:-2] = rng.uniform(100, 1000, size=tuple(s - 4 for s in shape))
    return data


def write_brats_folder(folder: Path, *, shape=(12, 14, 10), affine=None, scheme="brats2021", suffix=".nii.gz",
                       labels: np.ndarray | None = None) -> dict[str, Path]:
    affine = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    names = {"brats2021": ("_", {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair", "seg": "seg"}),
             "brats2023": ("-", {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg"})}[scheme]
    sep, mapping = names
    paths = {}
    for i, mod in enumerate(("t1", "t1ce", "t2", "flair")):
        paths[mod] = write_nifti(folder / f"case{sep}{mapping[mod]}{suffix}", small_volume(shape, seed=i), affine)
    if labels is not None:
        paths["seg"] = write_nifti(folder / f"case{sep}seg{suffix}", labels, affine)
    return paths
