"""Which file of a case holds which modality: BraTS 2021 / 2023 folders, MSD 4-D files, explicit maps,
DICOM studies.

Names only: nothing is read here except, for an MSD candidate, its header's shape, and for a
folder without NIfTI files, whether it holds DICOM files (which series is which modality is
decided when they are read, :mod:`.dicom_modalities`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import nibabel as nib

from ..errors import InputError
from .dicom_series import holds_dicom
from .files import BROKEN_LINK, nifti_suffix, strip_nifti_suffix
from .modalities import MODALITIES, NAMING, SEPARATOR, canonical_modality

Source = str | PathLike | Mapping[str, str | PathLike]

LAYOUTS = ("brats2021", "brats2023", "msd", "explicit", "dicom")


@dataclass
class CaseFiles:
    """Which file holds which modality (an MSD case names one 4-D file for all four, a DICOM study its
    folder for all four)."""

    name: str
    layout: str
    modalities: dict[str, Path]
    labels: Path | None = None
    ignored: list[Path] = field(default_factory=list)


def _scheme_pattern(scheme: str) -> re.Pattern:
    suffixes = "|".join(sorted(NAMING[scheme].values(), key=len, reverse=True))
    return re.compile(rf"^(?P<case>.+){re.escape(SEPARATOR[scheme])}(?P<suffix>{suffixes})$", re.IGNORECASE)


_PATTERNS = {scheme: _scheme_pattern(scheme) for scheme in NAMING}
_SUFFIX_TO_MODALITY = {scheme: {v: k for k, v in names.items()} for scheme, names in NAMING.items()}


def find_case_files(source: Source, labels: str | PathLike | None = None) -> CaseFiles:
    """Resolve a case source to files, checking names only (nothing is read yet)."""
    if isinstance(source, Mapping):
        return _explicit_files(source, labels)
    path = Path(source)
    if not path.exists():
        raise InputError(path, BROKEN_LINK if path.is_symlink() else "does not exist")
    if path.is_dir():
        files = _folder_files(path)
    elif nifti_suffix(path):
        files = _msd_files(path)
    else:
        raise InputError(path, "is neither a case folder nor a NIfTI file (.nii / .nii.gz)")
    if labels is not None:
        files.labels = Path(labels)
    return files


def _explicit_files(mapping: Mapping[str, str | PathLike], labels) -> CaseFiles:
    mods: dict[str, Path] = {}
    label_path = Path(labels) if labels is not None else None
    for key, value in mapping.items():
        try:
            mod = canonical_modality(key)
        except ValueError as exc:
            raise InputError(value, str(exc)) from None
        if mod == "seg":
            label_path = Path(value)
        elif mod in mods:
            raise InputError(value, f"modality {mod} is given twice (also {mods[mod]})")
        else:
            mods[mod] = Path(value)
    _require_all(mods, where=None)
    name = _common_case_name([p for p in mods.values()])
    return CaseFiles(name, "explicit", {m: mods[m] for m in MODALITIES}, label_path)


def _common_case_name(paths: list[Path]) -> str:
    stems = [strip_nifti_suffix(p) for p in paths]
    prefix = stems[0]
    for s in stems[1:]:
        while not s.startswith(prefix):
            prefix = prefix[:-1]
    return prefix.rstrip("_-") or stems[0]


def _folder_files(folder: Path) -> CaseFiles:
    nifti = sorted(  # a broken link is kept, so reading it names it rather than calling the modality missing
        p
        for p in folder.iterdir()
        if (p.is_file() or p.is_symlink()) and nifti_suffix(p) and not p.name.startswith(".")
    )
    found: dict[str, list[tuple[str, Path]]] = {}
    cases, schemes, ignored = set(), set(), []
    for p in nifti:
        stem = strip_nifti_suffix(p)
        for scheme, pattern in _PATTERNS.items():
            m = pattern.match(stem)
            if m:
                mod = _SUFFIX_TO_MODALITY[scheme][m["suffix"].lower()]
                found.setdefault(mod, []).append((scheme, p))
                cases.add(m["case"])
                schemes.add(scheme)
                break
        else:
            ignored.append(p)
    if not found:
        if len(nifti) <= 1 and holds_dicom(folder):  # a study; a NIfTI saved beside its files does not hide it
            if not nifti or not is_msd_image(nifti[0]):
                return CaseFiles(folder.name, "dicom", {m: folder for m in MODALITIES}, ignored=nifti)
        if len(nifti) == 1:
            return _msd_files(nifti[0])
        listed = ", ".join(p.name for p in nifti) or "no NIfTI files at all"
        raise InputError(
            folder,
            "holds no BraTS-named modality files (*_t1, *_t1ce, *_t2, *_flair or "
            f"*-t1n, *-t1c, *-t2w, *-t2f; .nii or .nii.gz) and no DICOM files; found: {listed}",
        )
    dupes = [(mod, hits) for mod, hits in found.items() if len(hits) > 1]
    if dupes:
        first, *rest = [
            (str(folder), f"modality {mod} is given by {len(hits)} files: " + ", ".join(p.name for _, p in hits))
            for mod, hits in dupes
        ]
        raise InputError(first[0], first[1], more=rest)
    if len(cases) > 1:
        raise InputError(folder, f"holds files of several cases ({', '.join(sorted(cases))}); give one case folder")
    mods = {mod: hits[0][1] for mod, hits in found.items()}
    label_path = mods.pop("seg", None)
    _require_all(mods, where=folder)
    layout = "brats2023" if schemes == {"brats2023"} else "brats2021"
    return CaseFiles(cases.pop(), layout, {m: mods[m] for m in MODALITIES}, label_path, ignored)


def _msd_files(path: Path) -> CaseFiles:
    """A Decathlon Task01 image; its label map is looked up in a sibling ``labelsTr`` folder."""
    label_path = None
    if path.parent.name.lower().startswith("images"):
        candidate = path.parent.parent / ("labels" + path.parent.name[len("images") :]) / path.name
        label_path = candidate if candidate.exists() else None
    return CaseFiles(strip_nifti_suffix(path), "msd", {m: path for m in MODALITIES}, label_path)


def is_msd_image(path: str | PathLike) -> bool:
    """True for a NIfTI file holding four 3-D volumes (read from the header only)."""
    try:
        shape = nib.load(str(path)).shape
    except Exception:  # noqa: BLE001 - not a NIfTI nibabel can read: not an MSD image
        return False
    return len(shape) == 4 and shape[3] == 4


def _require_all(mods: Mapping[str, Path], where: Path | None) -> None:
    missing = [m for m in MODALITIES if m not in mods]
    if missing:
        have = ", ".join(f"{m}={p.name}" for m, p in mods.items()) or "none"
        raise InputError(
            where, f"missing modality {', '.join(missing)} (found: {have}); a case needs {', '.join(MODALITIES)}"
        )
