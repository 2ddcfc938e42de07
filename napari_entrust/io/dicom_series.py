"""DICOM studies: the image series in a folder, each checked and read as one volume with its affine.

pydicom reads the files; nothing here parses DICOM. Files are grouped by SeriesInstanceUID, a
series' slices are ordered along its slice normal, and its geometry comes from
ImagePositionPatient, ImageOrientationPatient and PixelSpacing (patient LPS in DICOM, turned into
the RAS affine NIfTI uses, so the rest of the loader treats a series exactly as a NIfTI file).
Localiser images are left out (a scanner may store them in the same series as the images); every
other problem names the series in one line: one slice, slices of several sizes or orientations,
several slices at one position, missing slices, uneven spacing, pixel data it cannot decode.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import InputError, exception_reason
from .nifti import NiftiVolume

#: words of a localiser's (scout's, survey's) description, for scanners that do not say so in ImageType
_LOCALISER_WORDS = re.compile(r"locali[sz]er|scout|survey|3[ -]?plane|\bloc\b", re.IGNORECASE)
#: how far slice steps may differ (share of the median step) before the spacing counts as uneven
SPACING_TOLERANCE = 0.01
_DECODERS = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg"


@dataclass
class DicomSeries:
    """One series of a study: its headers (read without pixel data), in file order until checked."""

    folder: Path  #: the study folder it was found in
    uid: str
    headers: list = field(default_factory=list)  #: pydicom Datasets, one per image file
    files: list[Path] = field(default_factory=list)
    localisers: int = 0  #: localiser images of this series that were left out
    first: object = None  #: the first header seen (a localiser's, if the series holds only those)

    def attribute(self, name: str, default: object = "") -> object:
        """An attribute of the series' first image (those of a series are shared)."""
        ds = self.headers[0] if self.headers else self.first
        return getattr(ds, name, default) if ds is not None else default

    @property
    def number(self) -> str:
        return str(self.attribute("SeriesNumber", "?"))

    @property
    def description(self) -> str:
        return str(self.attribute("SeriesDescription", "") or self.attribute("ProtocolName", "")).strip()

    @property
    def label(self) -> str:
        """How messages name the series: the study folder, its number and its description."""
        return f"{self.folder} series {self.number}" + (f" ({self.description})" if self.description else "")

    @property
    def derived(self) -> bool:
        """A reformat, projection or other derived image, rather than the acquisition itself."""
        return "DERIVED" in [str(v).upper() for v in self.attribute("ImageType", [])]


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file: 128 bytes of preamble, then ``DICM``."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _files_under(folder: Path, depth: int | None = None):
    """The files under ``folder`` (hidden files and folders skipped), at most ``depth`` folders down."""
    for root, dirs, names in os.walk(folder):
        level = len(Path(root).relative_to(folder).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (depth is None or level < depth))
        yield from (Path(root) / n for n in sorted(names) if not n.startswith("."))


def dicom_files(folder: Path) -> list[Path]:
    """Every DICOM file under ``folder`` (any depth; hidden files and folders skipped)."""
    return [p for p in _files_under(folder) if p.is_file() and is_dicom_file(p)]


def holds_dicom(folder: Path, depth: int = 3, tries: int = 200) -> bool:
    """Whether ``folder`` holds DICOM files: it stops at the first, looks at most ``depth`` folders
    down and at ``tries`` files (napari asks this of any folder opened, in the GUI thread)."""
    for n, path in enumerate(_files_under(folder, depth)):
        if n >= tries:
            return False
        if path.is_file() and is_dicom_file(path):
            return True
    return False


def _is_localiser(ds) -> bool:
    kinds = [str(v).upper() for v in getattr(ds, "ImageType", [])]
    text = f"{getattr(ds, 'SeriesDescription', '')} {getattr(ds, 'ProtocolName', '')}"
    return "LOCALIZER" in kinds or bool(_LOCALISER_WORDS.search(text))


def scan_study(folder: Path) -> tuple[list[DicomSeries], list[str]]:
    """The image series under ``folder`` (by SeriesInstanceUID, in series-number order) and notes on
    what was left out: files that are not images, localisers."""
    import pydicom

    by_uid: dict[str, DicomSeries] = {}
    notes: list[str] = []
    not_images = 0
    for path in dicom_files(folder):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types for damaged files
            raise InputError(path, f"cannot be read as DICOM ({exception_reason(exc)})") from None
        positioned = all(hasattr(ds, a) for a in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"))
        if not positioned and not _multi_frame(ds):
            not_images += 1  # a report, a presentation state, a DICOMDIR: no image with a position
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", path.parent))
        series = by_uid.setdefault(uid, DicomSeries(folder, uid, first=ds))
        if _is_localiser(ds):
            series.localisers += 1
            continue
        series.headers.append(ds)
        series.files.append(path)
    if not_images:
        notes.append(f"{folder}: {not_images} DICOM file(s) without an image position (not images) left out")
    found = []
    for series in by_uid.values():
        if series.localisers:
            notes.append(f"{series.label}: {series.localisers} localiser image(s) left out")
        if series.headers:
            found.append(series)
    return sorted(found, key=lambda s: (_as_number(s.number), s.uid)), notes


def _multi_frame(ds) -> bool:
    """An enhanced (multi-frame) image: its slices' positions are in per-frame groups, not read yet."""
    return int(getattr(ds, "NumberOfFrames", 1) or 1) > 1


def _as_number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def _vectors(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
    return orientation[:3], orientation[3:], np.asarray(ds.ImagePositionPatient, dtype=float)


def ordered_slices(series: DicomSeries) -> tuple[list[int], np.ndarray]:
    """The slices' order along the series' normal and their positions there (mm); raises an
    :class:`InputError` naming the series for any geometry it cannot be one volume with."""
    headers, label = series.headers, series.label
    if any(_multi_frame(ds) for ds in headers):
        raise InputError(
            label,
            "is an enhanced (multi-frame) image, which is not read yet; export classic single-frame images,"
            " or convert the study to NIfTI with dcm2niix",
        )
    if len(headers) < 2:
        raise InputError(label, "holds a single image; a 3-D series needs at least two slices")
    sizes = {(int(ds.Rows), int(ds.Columns), *np.round(np.asarray(ds.PixelSpacing, float), 4)) for ds in headers}
    if len(sizes) > 1:
        raise InputError(label, f"mixes images of several sizes or pixel spacings: {sorted(sizes)}")
    row, col, _ = _vectors(headers[0])
    for ds in headers[1:]:
        r, c, _ = _vectors(ds)
        if not (np.allclose(r, row, atol=1e-3) and np.allclose(c, col, atol=1e-3)):
            raise InputError(label, "mixes slices of several orientations (ImageOrientationPatient differs)")
    normal = np.cross(row, col)
    where = np.array([float(_vectors(ds)[2] @ normal) for ds in headers])
    order = [int(i) for i in np.argsort(where, kind="stable")]
    steps = np.diff(where[order])
    median = float(np.median(steps))
    if steps.min() < 1e-3 * max(median, 1e-3):
        same = int((steps < 1e-3 * max(median, 1e-3)).sum())
        raise InputError(
            label,
            f"has {same} slice(s) at the same position as another: several echoes, time points or"
            " a repeated export in one series; export one volume per series",
        )
    if steps.max() - steps.min() > SPACING_TOLERANCE * median:
        unit = float(steps.min())
        multiples = steps / unit
        if np.allclose(multiples, np.round(multiples), atol=0.05):
            missing = int(np.round(multiples).sum() - len(steps))
            first = int(np.argmax(multiples > 1.5))
            raise InputError(
                label,
                f"is missing {missing} slice(s) (slices every {unit:g} mm, with a gap after"
                f" {where[order][first]:.1f} mm along the slice normal); export the whole series",
            )
        raise InputError(label, f"has uneven slice spacing ({steps.min():.3g} to {steps.max():.3g} mm)")
    return order, where[order]


def _pixels(series: DicomSeries, path: Path) -> np.ndarray:
    """One image's stored values with the rescale slope and intercept applied (float32)."""
    import pydicom

    ds = pydicom.dcmread(path)
    try:
        values = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom's decoders raise many types
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if syntax is not None and syntax.is_compressed:
            raise InputError(
                series.label,
                f"is compressed ({syntax.name}) and no decoder for it is installed here ({_DECODERS})",
            ) from None
        raise InputError(path, f"has pixel data that cannot be decoded ({exception_reason(exc)})") from None
    slope, intercept = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
    return values.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def series_affine(series: DicomSeries, order: list[int]) -> np.ndarray:
    """The RAS affine of voxel (column, row, slice) of the ordered series."""
    first, last = series.headers[order[0]], series.headers[order[-1]]
    row, col, origin = _vectors(first)
    step = (_vectors(last)[2] - origin) / (len(order) - 1)
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)  # between rows, between columns
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row * col_spacing, col * row_spacing, step, origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM's patient LPS -> RAS


def read_series(series: DicomSeries) -> NiftiVolume:
    """The series as one volume: voxels (column, row, slice), its RAS affine, a NIfTI header saying so."""
    order, _ = ordered_slices(series)
    data = np.stack([_pixels(series, series.files[i]).T for i in order], axis=-1)
    affine = series_affine(series, order)
    header = nib.Nifti1Header()
    header.set_xyzt_units("mm", "sec")
    header["qform_code"] = header["sform_code"] = 1  # scanner coordinates
    files = tuple(str(series.files[i]) for i in order)
    return NiftiVolume(series.files[order[0]].parent, data, affine, header, True, series.label, files)
