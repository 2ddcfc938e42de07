"""Writing a phantom case to disk: images, label map and ground truth in BraTS or MSD naming, or
as a DICOM study."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..io import labels as label_conv
from ..io.files import write_text
from ..io.modalities import MODALITIES, MSD_ORDER, NAMING, PHANTOM_FORMATS, SEPARATOR
from ..io.nifti import write_on_grid
from ..io.output_folder import output_folder, staged, top_names
from ..progress import Steps, run_to_end
from .dicom_writing import write_dicom_study
from .phantom import GENERATOR_VERSION, Phantom


def phantom_paths(name: str, out_dir: Path, fmt: str, n_raters: int) -> dict[str, Path]:
    """Where each file of a phantom case goes, in the naming of ``fmt`` (``dicom``: a study folder
    of four MR series, the label map in ``truth/``, as a PACS export has none)."""
    if fmt not in PHANTOM_FORMATS:
        raise ValueError(f"format must be one of {', '.join(PHANTOM_FORMATS)}, got {fmt!r}")
    if fmt == "dicom":
        paths = {"study": out_dir / "study", "seg": out_dir / "truth" / "labels.nii.gz"}
    elif fmt == "msd":
        paths = {"image": out_dir / "imagesTr" / f"{name}.nii.gz", "seg": out_dir / "labelsTr" / f"{name}.nii.gz"}
    else:
        sep = SEPARATOR[fmt]
        paths = {m: out_dir / f"{name}{sep}{NAMING[fmt][m]}.nii.gz" for m in (*MODALITIES, "seg")}
    truth = out_dir / "truth"
    paths["conflict"] = truth / "conflict.nii.gz"
    paths["visibility"] = truth / "visibility.nii.gz"
    for r in range(n_raters):
        paths[f"rater{r + 1}"] = truth / f"rater{r + 1}.nii.gz"
    paths["metadata"] = truth / "phantom.json"
    return paths


def save_phantom(
    ph: Phantom, out_dir: str | Path, fmt: str = "brats2021", *, overwrite: bool = False
) -> dict[str, Path]:
    """Write a phantom case (:func:`write_phantom` without progress); returns every path written."""
    return run_to_end(write_phantom(ph, out_dir, fmt, overwrite=overwrite))


def write_phantom(
    ph: Phantom, out_dir: str | Path, fmt: str = "brats2021", *, overwrite: bool = False
) -> Steps[dict[str, Path]]:
    """Write the four images, the label map and the ground truth as NIfTI (+ ``truth/phantom.json``).

    The folder is written whole or not at all (:func:`~..io.output_folder.output_folder`): nothing is
    written if it holds anything and ``overwrite`` is False.
    Label maps use the label values of ``fmt`` (BraTS 2021: ET = 4; BraTS 2023 and MSD: ET = 3).
    Yields progress; returns every path written.
    """
    out_dir = Path(out_dir)
    paths = phantom_paths(ph.name, out_dir, fmt, len(ph.raters))
    with output_folder(out_dir, overwrite=overwrite, ours=top_names(out_dir, paths.values())) as staging:
        yield from _write_files(ph, staged(paths, out_dir, staging), paths, out_dir, fmt)
    yield 1.0, "written"
    return paths


def _write_files(ph: Phantom, paths: dict[str, Path], final: dict[str, Path], out_dir: Path, fmt: str) -> Steps[None]:
    """Every file of :func:`write_phantom` at ``paths`` (``final``: where they will be, for phantom.json)."""
    grid = ph.to_case().grid
    convention = {"msd": "msd", "dicom": "brats2021"}.get(fmt, fmt)
    volumes = [(k, p) for k, p in paths.items() if k != "metadata"]
    for i, (key, path) in enumerate(volumes):
        yield i / len(volumes), f"writing {path.name}"
        if key == "study":
            write_dicom_study(ph, path, other_grid=None, localiser_in=None, seed=ph.seed)
            continue
        data, dtype, description = _volume(ph, key, convention)
        write_on_grid(data, grid, path, dtype=dtype, description=description)
    meta = {
        "name": ph.name,
        "seed": ph.seed,
        "spacing_mm": ph.spacing,
        "generator_version": GENERATOR_VERSION,
        "domain": ph.domain,
        "format": fmt,
        "label_convention": convention,
        "visibility_order": list(MODALITIES),
        "n_raters": int(len(ph.raters)),
        "events": [asdict(e) for e in ph.events],
        "volumes_ml": {
            name: float((ph.labels == v).sum() * ph.voxel_volume_ml) for v, name in label_conv.LABEL_NAMES.items() if v
        },
        "conflict_ml": float(ph.conflict.sum() * ph.voxel_volume_ml),
        "files": {k: str(p.relative_to(out_dir)) for k, p in final.items()},
    }
    write_text(paths["metadata"], json.dumps(meta, indent=2))


def _volume(ph: Phantom, key: str, convention: str) -> tuple[np.ndarray, type, str]:
    """The data, stored dtype and NIfTI description of one file of :func:`phantom_paths`."""
    if key == "image":
        return np.stack([ph.images[m] for m in MSD_ORDER], axis=-1), np.float32, "FLAIR,T1w,T1gd,T2w"
    if key in MODALITIES:
        return ph.images[key], np.float32, f"phantom {key}"
    if key == "seg" or key.startswith("rater"):
        labels = ph.labels if key == "seg" else ph.raters[int(key[5:]) - 1]
        return label_conv.from_internal(labels, convention), np.uint8, f"{convention} labels"
    if key == "conflict":
        return ph.conflict, np.uint8, "conflict mask"
    if key == "visibility":
        return np.moveaxis(ph.visibility, 0, -1), np.uint8, "visibility " + ",".join(MODALITIES)
    raise ValueError(f"unknown phantom file {key!r}")
