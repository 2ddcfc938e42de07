"""Helpers the tests share: NIfTI files written by hand, small volumes, a tiny model's configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_entrust.model.config import ModelConfig

ROOT = Path(__file__).resolve().parents[1]

#: a model small enough to build and run in milliseconds
TINY = ModelConfig(
    encoder_channels=(4, 8),
    feature_channels=4,
    consensus_channels=4,
    specific_channels=2,
    conflict_channels=2,
    denoiser_channels=8,
    denoiser_dilations=(1, 2),
)


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


def write_brats_folder(
    folder: Path,
    *,
    shape=(12, 14, 10),
    affine=None,
    scheme="brats2021",
    suffix=".nii.gz",
    labels: np.ndarray | None = None,
) -> dict[str, Path]:
    affine = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    names = {
        "brats2021": ("_", {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair", "seg": "seg"}),
        "brats2023": ("-", {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg"}),
    }[scheme]
    sep, mapping = names
    paths = {}
    for i, mod in enumerate(("t1", "t1ce", "t2", "flair")):
        paths[mod] = write_nifti(folder / f"case{sep}{mapping[mod]}{suffix}", small_volume(shape, seed=i), affine)
    if labels is not None:
        paths["seg"] = write_nifti(folder / f"case{sep}seg{suffix}", labels, affine)
    return paths


def rotation_z(deg):
    """A rotation about z by ``deg`` degrees, as a 4×4 affine."""
    a = np.deg2rad(deg)
    r = np.eye(4)
    r[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return r


#: grids a case may come on: the outputs must go back on each exactly
AFFINES = {
    "RAS": np.diag([1.0, 1.0, 1.0, 1.0]) + np.array([[0, 0, 0, -10], [0, 0, 0, -20], [0, 0, 0, 5], [0, 0, 0, 0]]),
    "LPS": np.array([[-1.0, 0, 0, 90], [0, -1.0, 0, 120], [0, 0, 1.0, -70], [0, 0, 0, 1]]),
    "anisotropic LAS": np.array([[-0.9, 0, 0, 50], [0, 0.9, 0, -60], [0, 0, 3.0, -20], [0, 0, 0, 1]]),
    "oblique": rotation_z(17) @ np.array([[1.2, 0, 0, -30], [0, 1.2, 0, -40], [0, 0, 2.5, 10], [0, 0, 0, 1]]),
    "axes permuted (SAR)": np.array([[0, 0, 1.0, -5], [0, 1.0, 0, -7], [1.0, 0, 0, -9], [0, 0, 0, 1]]),
}


def torchrun(nproc: int, port: int, *args: str) -> list[str]:
    """The command that runs ``args`` (a script, or ``-m module ...``) under torchrun on ``nproc`` processes."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_port",
        str(port),
        *args,
    ]


def seg_on_grid(volume, affine: np.ndarray, shape) -> np.ndarray:
    """A DICOM-SEG's volume (highdicom's, LPS) put on a RAS+ grid through world space; every SEG voxel
    must land on one of the grid's voxels."""
    index = np.indices(volume.array.shape[:3]).reshape(3, -1)
    lps = volume.affine @ np.vstack([index, np.ones(index.shape[1])])
    ijk = np.linalg.inv(affine) @ (np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)
    assert np.abs(ijk - np.round(ijk)).max() < 1e-3  # the SEG's frames are the grid's voxels
    out = np.zeros(tuple(shape), volume.array.dtype)
    out[tuple(np.round(ijk[:3]).astype(int))] = volume.array.reshape(index.shape[1], -1)[:, 0]
    return out


def dock_widgets(viewer):
    """The plugin's two dock widgets, added to ``viewer`` as napari's Plugins menu adds them."""
    _, run = viewer.window.add_plugin_dock_widget("napari-entrust", "EnTrust")
    _, review = viewer.window.add_plugin_dock_widget("napari-entrust", "Review uncertainty")
    return run, review
