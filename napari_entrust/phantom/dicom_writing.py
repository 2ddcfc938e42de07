"""A phantom as a DICOM study: four MR series as a scanner exports them, for tests and for trying
the DICOM reader without patient data.

Each modality becomes one series of single-frame MR images (int16 with a rescale slope, patient
LPS, rows running anterior to posterior and columns right to left, as axial scans are stored),
all files in one flat folder under names that say nothing, as a PACS export leaves them. A series
can be put on another grid (as a scan with other slices would be), and localiser images can be
mixed in, in their own series or inside another. :func:`nifti_twin` writes the same volumes as
NIfTI files, so a test can compare what the two readers make of one study.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from ..io.modalities import MODALITIES
from .phantom import Phantom

#: what each series is called, and its sequence timing (TR, TE, TI in ms), as a scanner would say
SERIES = {
    "t1": ("AX T1 SE", 500.0, 12.0, None),
    "t1ce": ("AX T1 SE POST GD", 500.0, 12.0, None),
    "t2": ("AX T2 TSE", 4000.0, 100.0, None),
    "flair": ("AX T2 FLAIR", 9000.0, 120.0, 2500.0),
}
_LPS = nib.orientations.axcodes2ornt(("L", "P", "S"))


def study_volumes(ph: Phantom, other_grid: str | None = None) -> dict[str, nib.Nifti1Image]:
    """The phantom's four images in LPS voxel order; ``other_grid``'s on another grid (resampled
    linearly): 1.5× thicker slices, pixels 1.25× longer along the columns than the rows (so a swap
    of PixelSpacing's two values shows), shifted by a third of a voxel in-plane."""
    out = {}
    for mod in MODALITIES:
        ras = nib.Nifti1Image(ph.images[mod].astype(np.float32), ph.affine)
        image = ras.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(ph.affine), _LPS))
        if mod == other_grid:
            shape = np.asarray(image.shape)
            factors = np.array([1.0, 1.25, 1.5])
            affine = image.affine @ np.diag([*factors, 1.0])
            affine[:3, 3] += image.affine[:3, :3] @ np.array([1 / 3, 1 / 3, 0.25])
            target = (tuple(int(n / f) for n, f in zip(shape[:3], factors)), affine)
            image = resample_from_to(image, target, order=1)
            image = nib.Nifti1Image(np.asarray(image.dataobj, dtype=np.float32), image.affine)
        out[mod] = image
    return out


def nifti_twin(volumes: dict[str, nib.Nifti1Image], folder: Path, name: str) -> Path:
    """The same volumes as a BraTS 2021 case folder (for comparing the two readers)."""
    folder.mkdir(parents=True, exist_ok=True)
    for mod, image in volumes.items():
        nib.save(image, str(folder / f"{name}_{mod}.nii.gz"))
    return folder


def _uid(rng: np.random.Generator) -> str:
    return "2.25." + str(int(rng.integers(1, 2**62)) * int(rng.integers(1, 2**62)))


def _base(ds, study: dict, series_uid: str, number: int, description: str) -> None:
    ds.PatientName, ds.PatientID, ds.Modality = "PHANTOM^ENTRUST", study["patient"], "MR"
    ds.StudyInstanceUID, ds.FrameOfReferenceUID = study["uid"], study["frame"]
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = series_uid, number, description
    ds.StudyDate = ds.SeriesDate = "20260101"


def _image(values: np.ndarray, lps: np.ndarray, k: int, meta: dict):
    """One single-frame MR image: slice ``k`` of an LPS-ordered volume with voxel-to-LPS ``lps``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.TransferSyntaxUID = MRImageStorage, ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta["sop"]
    ds.file_meta.MediaStorageSOPInstanceUID = meta["sop"]
    _base(ds, meta["study"], meta["series"], meta["number"], meta["description"])
    ds.ImageType = meta.get("image_type", ["ORIGINAL", "PRIMARY", "M", "ND"])
    ds.InstanceNumber = k + 1
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    ds.ImageOrientationPatient = [float(v) for v in (*(lps[:3, 0] / spacing[0]), *(lps[:3, 1] / spacing[1]))]
    ds.ImagePositionPatient = [float(v) for v in lps @ np.array([0, 0, k, 1.0])][:3]
    ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # between rows, between columns
    ds.SliceThickness = float(spacing[2])
    tr, te, ti = meta["timing"]
    ds.RepetitionTime, ds.EchoTime = tr, te
    if ti is not None:
        ds.InversionTime = ti
    if meta.get("contrast"):
        ds.ContrastBolusAgent = "GADOBUTROL"
    stored = values[:, :, k].T  # (rows, columns)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = meta["slope"], 0.0
    ds.PixelData = np.round(stored / meta["slope"]).astype("<i2").tobytes()
    return ds


def _localisers(shape, lps: np.ndarray, meta: dict) -> list:
    """Three localiser images (axial, coronal, sagittal planes through the middle) of a series."""
    images = []
    for n, axes in enumerate(((0, 1), (0, 2), (1, 2))):
        stack = np.zeros((shape[axes[0]], shape[axes[1]], 1), np.float32)
        plane = np.eye(4)
        plane[:, 0], plane[:, 1] = lps[:, axes[0]], lps[:, axes[1]]
        plane[:, 2] = np.append(np.cross(lps[:3, axes[0]], lps[:3, axes[1]]), 0.0)
        plane[:3, 3] = lps[:3, 3] + lps[:3, :3] @ (np.asarray(shape) / 2 * (np.arange(3) == 3 - sum(axes)))
        one = {**meta, "sop": f"{meta['sop']}.{n}", "image_type": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}
        images.append(_image(stack, plane, 0, one))
    return images


def write_dicom_study(
    ph: Phantom,
    folder: str | Path,
    *,
    other_grid: str | None = "t2",
    localiser_in: str | None = "flair",
    descriptions: dict[str, str] | None = None,
    seed: int = 0,
) -> dict[str, nib.Nifti1Image]:
    """Write the phantom as four MR series in one flat folder (files in shuffled order); returns the
    volumes written (LPS voxel order, RAS affines), for :func:`nifti_twin`. ``localiser_in``: the
    series three localiser images are mixed into; a separate localiser series is always added."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study = {"uid": _uid(rng), "frame": _uid(rng), "patient": f"PH{ph.seed:05d}"}
    volumes = study_volumes(ph, other_grid)
    images = []
    for number, mod in enumerate(MODALITIES, start=2):
        image = volumes[mod]
        values = np.asarray(image.dataobj, dtype=np.float32)
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
        description, *timing = SERIES[mod]
        meta = {
            "study": study,
            "series": _uid(rng),
            "number": number,
            "description": (descriptions or {}).get(mod, description),
            "timing": timing,
            "contrast": mod == "t1ce",
            "slope": max(float(np.abs(values).max()), 1e-6) / 30000.0,
        }
        images += [_image(values, lps, k, {**meta, "sop": _uid(rng)}) for k in range(values.shape[2])]
        if mod == localiser_in:
            images += _localisers(values.shape, lps, {**meta, "sop": _uid(rng)})
        if number == 2:  # the session's own localiser series
            own = {**meta, "series": _uid(rng), "number": 1, "description": "3-PLANE LOC", "sop": _uid(rng)}
            images += _localisers(values.shape, lps, own)
    for n, i in enumerate(rng.permutation(len(images))):
        images[i].save_as(folder / f"IM{n:05d}", enforce_file_format=True)
    return volumes
