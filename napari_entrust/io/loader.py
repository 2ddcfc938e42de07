"""Load a multimodal case: read every file, check it, put it in RAS+ on the reference grid.

The path of one volume: :func:`~.case_files.find_case_files` says which file holds which modality,
:func:`~.nifti.read_nifti` reads it, the checks below validate it, it is reordered to RAS+ and, if
its grid differs from the reference modality's, resampled onto it. The result is a
:class:`~.case.Case`. Every problem is reported as an :class:`InputError` naming the file.
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from ..errors import InputError
from . import geometry
from . import labels as label_conv
from .case import Case, Check
from .case_files import CaseFiles, Source, find_case_files
from .dicom_modalities import check_one_study, match_modalities
from .dicom_series import read_series, scan_study
from .modalities import MODALITIES, MSD_ORDER, canonical_modality
from .nifti import NiftiVolume, ReferenceGrid, read_nifti

#: the least share of the reference grid's extent another modality must cover to be resampled onto it
MIN_COVERAGE = 0.25


class ResampledWarning(UserWarning):
    """A modality was on a different grid and has been resampled onto the reference grid."""


class _Checks:
    """Collects :class:`Check` results; failures become one :class:`InputError` listing them all."""

    def __init__(self):
        self.items: list[Check] = []

    def add(self, subject, name: str, ok: bool, detail: str = "") -> bool:
        self.items.append(Check(str(subject), name, ok, detail))
        return ok

    def raise_if_failed(self) -> None:
        failed = [(c.subject, c.detail) for c in self.items if not c.ok]
        if failed:
            (path, problem), *rest = failed
            err = InputError(path, problem, more=rest)
            err.checks = list(self.items)
            raise err


def _check_image(vol: NiftiVolume, subject: str, checks: _Checks) -> None:
    bad = int(np.count_nonzero(~np.isfinite(vol.data)))
    checks.add(
        subject,
        "finite values",
        bad == 0,
        f"contains {bad} NaN/Inf voxel(s) of {vol.data.size}" if bad else "no NaN/Inf",
    )
    if bad:
        return
    lo, hi = float(vol.data.min()), float(vol.data.max())
    checks.add(
        subject,
        "not empty",
        hi > lo,
        f"is empty: every voxel is {lo:g}" if hi <= lo else f"intensity range {lo:g} .. {hi:g}",
    )


def _read_dicom_study(files: CaseFiles, series_names, checks: _Checks) -> dict[str, NiftiVolume]:
    """The four series of a DICOM study, matched to their modalities and read as volumes."""
    folder = files.modalities[MODALITIES[0]]
    series, notes = scan_study(folder)
    for note in notes:
        subject, _, detail = note.partition(": ")
        checks.add(subject, "left out", True, detail)
    matched = match_modalities(series, series_names, where=str(folder))
    for note in check_one_study(matched):
        checks.add(folder, "one frame of reference", True, note)
    vols = {}
    for mod, one in matched.items():
        try:
            vol = read_series(one)
        except InputError as exc:
            checks.add(exc.path, "readable DICOM series", False, exc.problem)
            continue
        checks.add(vol.label, "readable DICOM series", True, f"{mod}: shape {vol.data.shape}")
        _check_image(vol, vol.label, checks)
        vols[mod] = vol
    return vols


def _read_modalities(files: CaseFiles, checks: _Checks, series_names=None) -> dict[str, NiftiVolume]:
    vols: dict[str, NiftiVolume] = {}
    if files.layout == "dicom":
        return _read_dicom_study(files, series_names, checks)
    if files.layout == "msd":
        path = files.modalities[MODALITIES[0]]
        try:
            four_d = read_nifti(path, ndim=4)
        except InputError as exc:
            checks.add(path, "readable 4-D NIfTI", False, exc.problem)
            return vols
        n = four_d.data.shape[3]
        if not checks.add(
            path,
            "4 volumes (FLAIR, T1w, T1gd, T2w)",
            n == 4,
            f"has {n} volumes; an MSD Task01 image holds 4 (FLAIR, T1w, T1gd, T2w)" if n != 4 else "4 volumes",
        ):
            return vols
        for index, mod in enumerate(MSD_ORDER):
            vol = NiftiVolume(
                path, np.ascontiguousarray(four_d.data[..., index]), four_d.affine, four_d.header, four_d.has_affine
            )
            _check_image(vol, f"{path}[volume {index}: {mod}]", checks)
            vols[mod] = vol
        return {m: vols[m] for m in MODALITIES}
    for mod, path in files.modalities.items():
        try:
            vol = read_nifti(path)
        except InputError as exc:
            checks.add(path, "readable 3-D NIfTI", False, exc.problem)
            continue
        checks.add(path, "readable 3-D NIfTI", True, f"{mod}: shape {vol.data.shape}")
        _check_image(vol, path, checks)
        vols[mod] = vol
    return vols


def _read_labels(path: Path, layout: str, convention: str, checks: _Checks) -> tuple[NiftiVolume, str] | None:
    try:
        vol = read_nifti(path, dtype=None)
    except InputError as exc:
        checks.add(path, "readable label map", False, exc.problem)
        return None
    checks.add(path, "readable label map", True, f"shape {vol.data.shape}, {vol.data.dtype}")
    data = vol.data
    if not np.issubdtype(data.dtype, np.integer):
        finite = np.isfinite(data)
        if not checks.add(
            path, "finite values", bool(finite.all()), f"contains {int((~finite).sum())} NaN/Inf voxel(s)"
        ):
            return None
        fractional = data != np.round(data)
        if not checks.add(
            path,
            "integer labels",
            not fractional.any(),
            f"holds non-integer values (e.g. {float(data[fractional].flat[0]):g}); expected a label map",
        ):
            return None
    values = {int(v) for v in np.unique(data)}
    if convention == "auto":
        convention = label_conv.guess_convention(values, layout)
    unexpected = label_conv.unexpected_values(values, convention)
    expected = "/".join(str(v) for v in label_conv.CONVENTIONS[convention])
    if not checks.add(
        path,
        "label values",
        not unexpected,
        f"holds unexpected label values {unexpected}; {convention} labels are {expected} "
        "(BraTS 2021: 0/1/2/4, BraTS 2023: 0/1/2/3)"
        if unexpected
        else f"values {sorted(values)} ({convention})",
    ):
        return None
    vol.data = label_conv.to_internal(data, convention)
    return vol, convention


def read_label_file(path: str | PathLike, convention: str = "auto") -> tuple[NiftiVolume, str]:
    """One label map on its own, checked as in a case (finite, integer, known values), internal convention."""
    checks = _Checks()
    result = _read_labels(Path(path), "", convention, checks)
    checks.raise_if_failed()
    return result


def read_image_file(path: str | PathLike) -> NiftiVolume:
    """One 3-D image on its own, checked as in a case (readable, finite, not constant), float32."""
    vol = read_nifti(path)
    checks = _Checks()
    _check_image(vol, str(path), checks)
    checks.raise_if_failed()
    return vol


def _onto_reference(
    vol: NiftiVolume,
    ref: NiftiVolume,
    grid: ReferenceGrid,
    subject: str,
    checks: _Checks,
    order: int,
    notes: list[str],
    resampled: list[str],
    name: str,
) -> np.ndarray | None:
    """Return ``vol`` in RAS+ on the reference grid, resampling (and saying so) when needed."""
    if vol is ref or (
        vol.has_affine == ref.has_affine and geometry.same_grid(vol.data.shape, vol.affine, ref.data.shape, ref.affine)
    ):
        checks.add(subject, "on the reference grid", True, f"same grid as {ref.short_label}")
        return geometry.to_canonical(vol.data, ref.affine)[0]
    if not (vol.has_affine and ref.has_affine):
        which = vol.path if not vol.has_affine else ref.path
        if vol.data.shape == ref.data.shape:
            note = (
                f"{name}: {which.name} has no usable affine (qform/sform code 0); shapes match, so it is "
                f"taken to be on the grid of {ref.short_label}"
            )
            notes.append(note)
            checks.add(subject, "on the reference grid", True, note)
            return geometry.to_canonical(vol.data, ref.affine)[0]
        checks.add(
            subject,
            "on the reference grid",
            False,
            f"shape {vol.data.shape} differs from the reference {ref.short_label} {ref.data.shape} and "
            f"{which.name} has no usable affine (qform/sform code 0), so it cannot be aligned",
        )
        return None
    overlap = geometry.overlap_fraction(ref.data.shape, ref.affine, vol.data.shape, vol.affine)
    if overlap <= 0.0:
        lo, hi = geometry.world_bounds(vol.data.shape, vol.affine)
        rlo, rhi = geometry.world_bounds(ref.data.shape, ref.affine)
        checks.add(
            subject,
            "overlaps the reference grid",
            False,
            f"does not overlap the reference grid of {ref.short_label}: its extent is "
            f"{np.round(lo, 1).tolist()}..{np.round(hi, 1).tolist()} mm, the reference's "
            f"{np.round(rlo, 1).tolist()}..{np.round(rhi, 1).tolist()} mm",
        )
        return None
    if overlap < MIN_COVERAGE:
        checks.add(
            subject,
            "overlaps the reference grid",
            False,
            f"covers only {overlap:.0%} of the extent of the reference grid of {ref.short_label}; the model "
            f"would read the other {1 - overlap:.0%} as empty (at least {MIN_COVERAGE:.0%} is needed)",
        )
        return None
    canon, canon_affine = geometry.to_canonical(vol.data, vol.affine)
    out = resample_from_to(
        nib.Nifti1Image(canon, canon_affine),
        (grid.canonical_shape, grid.canonical_affine),
        order=order,
        mode="constant",
        cval=0.0,
    )
    data = np.asarray(out.dataobj).astype(vol.data.dtype, copy=False)
    note = (
        f"{name}: {vol.short_label} is on a different grid (shape {vol.data.shape}, spacing "
        f"{np.round(geometry.voxel_sizes(vol.affine), 3).tolist()} mm, {geometry.orientation_codes(vol.affine)}); "
        f"resampled onto the grid of {ref.short_label} ({'nearest' if order == 0 else 'linear'}; "
        f"{overlap:.0%} of the reference extent covered)"
    )
    warnings.warn(note, ResampledWarning, stacklevel=4)
    notes.append(note)
    resampled.append(name)
    checks.add(subject, "on the reference grid", True, note)
    return data


def load_case(
    source: Source,
    *,
    labels: str | PathLike | None = None,
    reference: str | None = None,
    label_convention: str = "auto",
    series: dict[str, str] | None = None,
) -> Case:
    """Load and validate a case. Raises :class:`InputError` listing every problem found.

    ``source``: a BraTS 2021/2023 case folder, an MSD Task01 4-D NIfTI, a folder of DICOM series, or
    a mapping ``{"t1": path, "t1ce": path, "t2": path, "flair": path[, "seg": path]}``.
    ``reference``: modality whose grid and orientation outputs are written on (default: the first
    of t1, t1ce, t2, flair). ``label_convention``: ``auto``, ``brats2021``, ``brats2023`` or ``msd``.
    ``series``: for a DICOM study, which series is which modality (``{"t1ce": "POST"}``: a series
    number or words of its description; default: the ``ENTRUST_SERIES`` variable, then guessed).
    """
    case, checks = _load(source, labels, reference, label_convention, series)
    checks.raise_if_failed()
    return case


def inspect_case(source: Source, **kwargs) -> tuple[Case | None, list[Check]]:
    """Run every check that can be run and return them with the case (None if any failed)."""
    try:
        case, checks = _load(
            source,
            kwargs.get("labels"),
            kwargs.get("reference"),
            kwargs.get("label_convention", "auto"),
            kwargs.get("series"),
        )
    except InputError as exc:
        done = getattr(exc, "checks", [])
        seen = {(str(c.subject), c.detail) for c in done if not c.ok}  # a failed check is not reported twice
        where = [Check(p, "case files", False, msg) for p, msg in exc.problems if (str(p), msg) not in seen]
        return None, done + where
    failed = any(not c.ok for c in checks.items)
    return (None if failed else case), checks.items


def _source_name(source) -> str:
    """The case as a user named it: its folder or file, or the files of an explicit mapping."""
    return ", ".join(str(p) for p in source.values()) if isinstance(source, dict) else str(source)


def _load(source, labels, reference, label_convention, series=None) -> tuple[Case | None, _Checks]:
    if label_convention not in ("auto", *label_conv.CONVENTIONS):
        raise ValueError(f"label_convention must be auto or one of {sorted(label_conv.CONVENTIONS)}")
    files = find_case_files(source, labels)
    checks = _Checks()
    for p in files.ignored:
        checks.add(p, "recognised file name", True, "not a modality or label file of this case; ignored")
    vols = _read_modalities(files, checks, series)
    label_read = None
    if files.labels is not None:
        label_read = _read_labels(files.labels, files.layout, label_convention, checks)
    if len(vols) < len(MODALITIES):
        checks.raise_if_failed()
    try:
        ref_mod = canonical_modality(reference) if reference else MODALITIES[0]
    except ValueError:
        ref_mod = None
    if ref_mod not in vols:
        raise InputError(
            _source_name(source), f"--reference {reference!r} is not one of this case's modalities ({', '.join(vols)})"
        )
    ref = vols[ref_mod]
    grid = ReferenceGrid.from_volume(ref)
    notes: list[str] = []
    resampled: list[str] = []
    if geometry.is_oblique(ref.affine):
        notes.append(
            f"{ref.short_label} has an oblique affine; arrays are kept in the closest RAS+ axis order "
            "and outputs carry the full oblique affine"
        )
    images: dict[str, np.ndarray] = {}
    for mod, vol in vols.items():
        subject = vol.label if files.layout != "msd" else f"{vol.path}[{mod}]"
        data = _onto_reference(vol, ref, grid, subject, checks, 1, notes, resampled, mod)
        if data is not None:
            images[mod] = np.ascontiguousarray(data, dtype=np.float32)
    label_data, convention = None, None
    if label_read is not None:
        label_vol, convention = label_read
        data = _onto_reference(label_vol, ref, grid, label_vol.path, checks, 0, notes, resampled, "labels")
        if data is not None:
            label_data = np.ascontiguousarray(data, dtype=np.uint8)
    if any(not c.ok for c in checks.items):
        return None, checks
    file_geometry = {m: describe_geometry(v) for m, v in vols.items()}
    if label_read is not None:
        file_geometry["labels"] = describe_geometry(label_read[0])
    sources = {m: (v.label if files.layout != "msd" else f"{v.path}[{MSD_ORDER.index(m)}]") for m, v in vols.items()}
    case = Case(
        files.name,
        images,
        grid,
        label_data,
        files.layout,
        sources,
        str(files.labels) if files.labels else None,
        convention,
        resampled,
        notes,
        checks.items,
        file_geometry,
        ref_mod,
        {m: list(v.files) for m, v in vols.items() if v.files},
        str(files.modalities[MODALITIES[0]]) if files.layout == "dicom" else "",
    )
    return case, checks


def describe_geometry(vol: NiftiVolume) -> dict:
    """Shape, spacing, orientation and qform/sform codes of a file as stored (for ``entrust info``)."""
    return {
        "path": vol.label,
        "shape": list(vol.data.shape),
        "spacing_mm": [round(float(v), 4) for v in geometry.voxel_sizes(vol.affine)],
        "orientation": geometry.orientation_codes(vol.affine),
        "oblique": geometry.is_oblique(vol.affine),
        "qform_code": int(vol.header["qform_code"]),
        "sform_code": int(vol.header["sform_code"]),
    }
