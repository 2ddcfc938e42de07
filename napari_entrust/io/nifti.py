"""Reading one NIfTI file safely, and writing arrays back onto a reference grid (atomically).

Every failure here becomes an :class:`InputError`/:class:`OutputError` naming the file, never a
traceback from inside nibabel, gzip or zlib.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import InputError, OutputError, exception_reason
from . import geometry
from .files import BROKEN_LINK, atomic_write, nifti_suffix


@dataclass
class NiftiVolume:
    """One volume as it is in its file: data in file voxel order, the file's affine and header."""

    path: Path
    data: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header
    has_affine: bool  #: the file sets qform or sform (code > 0); otherwise the affine is a guess
    name: str = ""  #: how messages name it, where the path alone does not (a DICOM series)
    files: tuple[str, ...] = ()  #: a DICOM series' image files, in slice order

    @property
    def label(self) -> str:
        return self.name or str(self.path)

    @property
    def short_label(self) -> str:
        """The file's name, or the series' label (several series may share a folder)."""
        return self.name or self.path.name


def read_nifti(path: str | os.PathLike, *, ndim: int = 3, dtype=np.float32) -> NiftiVolume:
    """Read a whole NIfTI file, checking that it exists, decodes completely and has ``ndim`` dims.

    Trailing singleton axes beyond ``ndim`` (``X×Y×Z×1``) are dropped. ``dtype=None`` keeps the
    stored values (use it for label maps).
    """
    path = Path(path)
    if not path.exists() and path.is_symlink():
        raise InputError(path, BROKEN_LINK)
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a NIfTI file (.nii or .nii.gz)")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for foreign or damaged files
        raise InputError(path, f"cannot be read as NIfTI ({exception_reason(exc)}){_misnamed(path)}") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(path, f"is a {type(img).__name__}, not a NIfTI image; convert it to .nii.gz")
    _check_voxel_type(path, img.get_data_dtype())
    shape = tuple(int(s) for s in img.shape)
    while len(shape) > ndim and shape[-1] == 1:
        shape = shape[:-1]
    what = {3: "a 3-D volume", 4: "a 4-D image"}.get(ndim, f"{ndim}-D")
    if len(shape) != ndim:
        raise InputError(path, f"has shape {tuple(img.shape)} ({len(img.shape)}-D); expected {what}")
    if min(shape[:3]) < 2:  # a 4-D file may hold a single volume
        flat = [i for i, n in enumerate(shape[:3]) if n < 2]
        raise InputError(
            path, f"has shape {tuple(img.shape)}: a single voxel along axis {flat[0]}, so it is 2-D; expected {what}"
        )
    try:
        data = np.asanyarray(img.dataobj)
        data = data.reshape(shape)
    except Exception as exc:  # noqa: BLE001 - gzip, zlib and numpy raise many types for damaged data
        raise InputError(
            path, f"is truncated or corrupt: its data cannot be decoded ({exception_reason(exc)})"
        ) from None
    if dtype is not None:
        _check_fits(path, data, dtype)
        data = data.astype(dtype, copy=False)
    header = img.header
    has_affine = int(header["sform_code"]) > 0 or int(header["qform_code"]) > 0
    return NiftiVolume(path, data, np.asarray(img.affine, dtype=float), header, has_affine)


def _misnamed(path: Path) -> str:
    """A hint when the name's suffix contradicts the bytes: gzip data as ``.nii``, or plain as ``.nii.gz``."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(348)  # a NIfTI-1 header's size
    except OSError:
        return ""
    gzipped = start[:2] == b"\x1f\x8b"
    name = path.name.lower()
    if gzipped and name.endswith(".nii"):
        return "; it is gzip-compressed: rename it to end in .nii.gz"
    if not gzipped and len(start) == 348 and name.endswith(".nii.gz"):
        return "; it is not gzip-compressed: rename it to end in .nii"
    return ""


def _check_fits(path: Path, data: np.ndarray, dtype) -> None:
    """Refuse finite values that ``dtype`` cannot hold (float64 beyond float32's range become Inf)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or data.dtype.itemsize <= dtype.itemsize or data.dtype.kind != "f":
        return
    finite = data[np.isfinite(data)]
    limit = float(np.finfo(dtype).max)
    if finite.size and float(np.abs(finite).max()) > limit:
        raise InputError(
            path,
            f"holds values up to {float(np.abs(finite).max()):.3g}, beyond what {dtype} can hold "
            f"({limit:.3g}); rescale the image",
        )


def _check_voxel_type(path: Path, dtype: np.dtype) -> None:
    """Refuse voxels that are not one real number each (RGB colour, complex k-space or phase data)."""
    if dtype.fields is not None or dtype.shape:
        raise InputError(path, f"holds {dtype} voxels (colour or structured data); expected one grey value per voxel")
    if dtype.kind == "c":
        raise InputError(path, "holds complex voxels; give the magnitude image")
    if dtype.kind not in "biuf":
        raise InputError(path, f"holds {dtype} voxels; expected numbers")


@dataclass
class ReferenceGrid:
    """The grid and orientation outputs are written on: that of the reference input file.

    Internally arrays are RAS+ canonical (:attr:`canonical_affine`); :meth:`image` puts them back
    in the file's voxel order with its affine and qform/sform codes, so outputs overlay the input.
    """

    path: Path
    shape: tuple[int, int, int]
    affine: np.ndarray
    header: nib.Nifti1Header

    @classmethod
    def from_volume(cls, vol: NiftiVolume) -> ReferenceGrid:
        return cls(vol.path, tuple(vol.data.shape[:3]), vol.affine, vol.header.copy())

    def to_dict(self) -> dict:
        """JSON-friendly form, carried in napari layer metadata so a writer can restore the file's grid."""
        return {
            "path": str(self.path),
            "shape": list(self.shape),
            "affine": np.asarray(self.affine).tolist(),
            "qform_code": int(self.header["qform_code"]),
            "sform_code": int(self.header["sform_code"]),
            "xyzt_units": list(self.header.get_xyzt_units()),
        }

    @classmethod
    def from_affine(cls, path: str | os.PathLike, shape, affine: np.ndarray) -> ReferenceGrid:
        """A grid for arrays made in memory (or in napari): mm units, qform and sform set to scanner (1)."""
        header = nib.Nifti1Header()
        header.set_xyzt_units("mm", "sec")
        header["qform_code"] = header["sform_code"] = 1
        return cls(Path(path), tuple(int(v) for v in shape[:3]), np.asarray(affine, dtype=float), header)

    @classmethod
    def from_dict(cls, d: dict) -> ReferenceGrid:
        header = nib.Nifti1Header()
        header.set_xyzt_units(*d.get("xyzt_units", ("mm", "sec")))
        header["qform_code"], header["sform_code"] = int(d.get("qform_code", 1)), int(d.get("sform_code", 1))
        return cls(Path(d["path"]), tuple(int(v) for v in d["shape"]), np.asarray(d["affine"], dtype=float), header)

    @property
    def canonical_affine(self) -> np.ndarray:
        return geometry.canonical_grid(self.shape, self.affine)[1]

    @property
    def canonical_shape(self) -> tuple[int, int, int]:
        return geometry.canonical_grid(self.shape, self.affine)[0]

    @property
    def spacing(self) -> np.ndarray:
        return geometry.voxel_sizes(self.affine)

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    def image(
        self, canonical: np.ndarray, dtype=None, description: str = "", *, scaled: bool = False
    ) -> nib.Nifti1Image:
        """A NIfTI image of RAS+ data (shape ``canonical_shape`` plus optional trailing axes).

        ``scaled``: store float data as the integer ``dtype`` with ``scl_slope``/``scl_inter`` fitted
        to its range by nibabel (every reader applies them), instead of casting it."""
        if tuple(canonical.shape[:3]) != self.canonical_shape:
            raise ValueError(f"array shape {canonical.shape} does not match the grid {self.canonical_shape}")
        data = geometry.from_canonical(np.asarray(canonical), self.affine)
        if dtype is not None and not scaled:
            data = data.astype(dtype, copy=False)
        if data.dtype == bool:
            data = data.astype(np.uint8)
        header = nib.Nifti1Header()
        header.set_xyzt_units(*self.header.get_xyzt_units())
        header.set_data_dtype(dtype if scaled else data.dtype)
        img = nib.Nifti1Image(data, self.affine, header)
        img.set_qform(self.affine, code=int(self.header["qform_code"]))
        img.set_sform(self.affine, code=int(self.header["sform_code"]))
        img.header.set_slope_inter(np.nan, np.nan)
        if description:
            img.header["descrip"] = description[:79].encode("ascii", "replace")
        return img


def save_nifti(img: nib.Nifti1Image, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a NIfTI image atomically (temporary file, then rename)."""
    if nifti_suffix(path) is None:
        raise OutputError(path, "output name must end in .nii.gz or .nii")
    return atomic_write(path, lambda tmp: nib.save(img, str(tmp)), overwrite=overwrite)


def write_on_grid(
    canonical: np.ndarray,
    grid: ReferenceGrid,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    dtype=None,
    description: str = "",
    scaled: bool = False,
) -> Path:
    """Write RAS+ data back on the reference grid (orientation, affine, qform/sform codes)."""
    image = grid.image(canonical, dtype=dtype, description=description, scaled=scaled)
    return save_nifti(image, path, overwrite=overwrite)
