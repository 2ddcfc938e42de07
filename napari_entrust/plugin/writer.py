"""napari writer: Labels and Image layers -> NIfTI that overlays the source file in other tools.

Layers that came from our reader (or from an EnTrust run) carry the reference file's grid in
metadata; their data is written back in that file's voxel order, affine and qform/sform codes.
Other layers are written at their napari geometry (world = RAS mm). Writes are atomic: a failed
save leaves any existing file untouched.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import OutputError
from ..io import labels as label_conv
from ..io.files import check_writable, nifti_suffix
from ..io.nifti import ReferenceGrid, save_nifti
from ..outputs.provenance import input_hashes, sidecar_path, write_sidecar


def _with_suffix(path: str) -> Path:
    return Path(path) if nifti_suffix(path) else Path(path + ".nii.gz")


def _meta_affine(meta: dict, ndim: int) -> np.ndarray:
    """The 4×4 voxel -> world matrix of the last three axes, composed as napari composes a layer's transform."""
    from napari.utils.transforms import CompositeAffine

    parts = {k: meta[k] for k in ("scale", "translate", "rotate", "shear") if meta.get(k) is not None}
    m = CompositeAffine(ndim=ndim, **parts).affine_matrix
    if meta.get("affine") is not None:
        m = np.asarray(meta["affine"], dtype=float) @ m
    out = np.eye(4)
    out[:3, :3] = m[ndim - 3 : ndim, ndim - 3 : ndim]
    out[:3, 3] = m[ndim - 3 : ndim, ndim]
    return out


def _image(data: np.ndarray, meta: dict, *, is_labels: bool) -> nib.Nifti1Image:
    metadata = meta.get("metadata") or {}
    data = np.asarray(data)
    if data.ndim not in (3, 4):
        raise OutputError(
            meta.get("name", "layer"), f"has {data.ndim} dimensions; NIfTI export needs 3-D (or a stack of 3-D volumes)"
        )
    if is_labels and "entrust_label_convention" in metadata and data.max(initial=0) <= label_conv.ET:
        data = label_conv.from_internal(data, metadata["entrust_label_convention"])
    volumes = np.moveaxis(data, 0, -1) if data.ndim == 4 else data  # a leading stack axis goes last in NIfTI
    dtype = (
        (np.uint8 if data.max(initial=0) <= 255 and data.min(initial=0) >= 0 else np.int32) if is_labels else np.float32
    )
    grid = ReferenceGrid.from_dict(metadata["entrust_grid"]) if "entrust_grid" in metadata else None
    if grid is not None and grid.canonical_shape == volumes.shape[:3]:
        layer_affine = _meta_affine(meta, data.ndim)
        if np.allclose(layer_affine, grid.canonical_affine, atol=1e-3):
            return grid.image(volumes, dtype=dtype, description=f"napari-entrust: {meta.get('name', '')}")
    affine = _meta_affine(meta, data.ndim)
    img = nib.Nifti1Image(volumes.astype(dtype), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


def write_labels(path: str, data, meta: dict) -> list[str]:
    """Save a Labels layer as NIfTI (label values in the source's convention)."""
    out = _with_suffix(path)
    save_nifti(_image(data, meta, is_labels=True), out, overwrite=True)
    return [str(out)]


def write_image(path: str, data, meta: dict) -> list[str]:
    """Save an Image layer as float32 NIfTI."""
    out = _with_suffix(path)
    save_nifti(_image(data, meta, is_labels=False), out, overwrite=True)
    return [str(out)]


def layer_meta(layer) -> dict:
    """The parts of a layer the writer needs, as napari passes them to writer contributions."""
    return {
        "name": layer.name,
        "metadata": layer.metadata,
        "scale": layer.scale,
        "translate": layer.translate,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine.affine_matrix,
    }


def is_dicom_seg_path(path: str | Path) -> bool:
    return str(path).lower().endswith(".dcm")


def _study_grid(data: np.ndarray, meta: dict) -> tuple[ReferenceGrid, list[str]]:
    """The reference series' grid and files of a layer of a DICOM study, if the layer lies on it."""
    metadata = meta.get("metadata") or {}
    files = (metadata.get("entrust_dicom_series") or {}).get(metadata.get("entrust_dicom_reference"))
    if not files or "entrust_grid" not in metadata:
        raise OutputError(meta.get("name", "layer"), "is not of a case read from a DICOM study; save it as NIfTI")
    grid = ReferenceGrid.from_dict(metadata["entrust_grid"])
    on_grid = grid.canonical_shape == np.shape(data) and np.allclose(
        _meta_affine(meta, 3), grid.canonical_affine, atol=1e-3
    )
    if not on_grid:
        raise OutputError(meta.get("name", "layer"), "is not on the study's grid (moved, resampled); save it as NIfTI")
    return grid, list(files)


def save_corrected_mask(
    path: str | Path, data: np.ndarray, meta: dict, record: dict, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """The reviewed mask on the source grid, plus its provenance JSON sidecar (both atomic): NIfTI,
    or a DICOM Segmentation referencing the source series when ``path`` ends in ``.dcm``."""
    out = Path(path) if is_dicom_seg_path(path) else _with_suffix(str(path))
    check_writable([out, sidecar_path(out)], overwrite)
    metadata = meta.get("metadata") or {}
    summary = metadata.get("entrust_summary", {})
    record = {
        "mask": out.name,
        "case": metadata.get("entrust_case"),
        "label_convention": metadata.get("entrust_label_convention", "brats2021"),
        "inputs": input_hashes(metadata.get("entrust_sources", {}), metadata.get("entrust_dicom_series")),
        "model": summary.get("model", {"path": metadata.get("entrust_model")}),
        "parameters": summary.get("parameters", metadata.get("entrust_sampling", {})),
        "device": metadata.get("entrust_device"),
        **record,
    }
    if is_dicom_seg_path(out):
        from ..outputs.dicom_seg import write_dicom_segs

        grid, files = _study_grid(data, meta)
        version = str(record["model"].get("sha256", ""))[:16] if isinstance(record["model"], dict) else ""
        write_dicom_segs(np.asarray(data), grid, files, out, edited=True, overwrite=overwrite, version=version)
        record["mask_format"] = "DICOM Segmentation (BINARY; segments 1 NCR, 2 ED, 3 ET)"
    else:
        save_nifti(_image(data, meta, is_labels=True), out, overwrite=overwrite)
    return out, write_sidecar(out, record, overwrite=overwrite)
