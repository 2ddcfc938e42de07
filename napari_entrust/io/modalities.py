"""Modality names and the file-naming schemes of BraTS 2021, BraTS 2023 and MSD Task01."""

from __future__ import annotations

#: Canonical modality order used everywhere inside napari-entrust (and by the bundled model).
MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")

#: File suffix of each modality in each naming scheme (``"seg"`` is the label map).
NAMING: dict[str, dict[str, str]] = {
    "brats2021": {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair", "seg": "seg"},
    "brats2023": {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg"},
}
#: Separator between case id and suffix, e.g. ``BraTS2021_00000_t1.nii.gz`` / ``BraTS-GLI-00000-000-t1n.nii.gz``.
SEPARATOR: dict[str, str] = {"brats2021": "_", "brats2023": "-"}

#: The ways a case's files can be named when written: BraTS 2021, BraTS 2023, one MSD Task01 4-D file.
FORMATS: tuple[str, ...] = ("brats2021", "brats2023", "msd")
#: ... and what a phantom can also be written as: a DICOM study (``entrust sample --format dicom``)
PHANTOM_FORMATS: tuple[str, ...] = (*FORMATS, "dicom")

#: Volume order inside a Medical Segmentation Decathlon Task01 4-D image (FLAIR, T1w, T1gd, T2w).
MSD_ORDER: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")

#: Every spelling a user may type for a modality (CLI ``--modality NAME=path``, napari metadata).
ALIASES: dict[str, str] = {
    "t1": "t1",
    "t1n": "t1",
    "t1w": "t1",
    "t1native": "t1",
    "t1ce": "t1ce",
    "t1c": "t1ce",
    "t1gd": "t1ce",
    "t1post": "t1ce",
    "t1gad": "t1ce",
    "t2": "t2",
    "t2w": "t2",
    "flair": "flair",
    "t2f": "flair",
    "t2flair": "flair",
    "seg": "seg",
    "label": "seg",
    "labels": "seg",
    "mask": "seg",
}

DISPLAY_NAMES: dict[str, str] = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}


def canonical_modality(name: str) -> str:
    """Map any accepted spelling (``T1Gd``, ``t2-flair``) to ``t1``/``t1ce``/``t2``/``flair``/``seg``."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in ALIASES:
        known = ", ".join(sorted(set(ALIASES)))
        raise ValueError(f"unknown modality {name!r}; expected one of: {known}")
    return ALIASES[key]
