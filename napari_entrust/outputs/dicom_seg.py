"""The mask (and the TrustMap) as DICOM Segmentation objects referencing the source series, for a
case read from a DICOM study: what goes back to the hospital's PACS, and what 3D Slicer, OHIF and
ITK-SNAP open beside the images.

highdicom writes them. The mask is one BINARY segmentation with NCR, ED and ET as segments 1-3,
coded in SNOMED CT. The TrustMap goes as a second, FRACTIONAL segmentation of type PROBABILITY
(one segment, 8 bits): a map in [0, 1], which that type holds without a threshold throwing most
of it away, in the one object type every SEG reader shows; a Parametric Map would hold it in
float but few viewers open those. Both are on the reference series' own frames (its rows,
columns and slices), so each frame references the source image it lies on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import OutputError, exception_reason
from ..io import geometry
from ..io import labels as label_conv
from ..io.files import atomic_write
from ..io.nifti import ReferenceGrid

#: segment number, label, SNOMED CT property type, BraTS 2021 label value
SEGMENTS = (
    (1, "NCR: necrotic tumour core", ("6574001", "Necrosis"), label_conv.NCR),
    (2, "ED: peritumoral edema", ("79654002", "Edema"), label_conv.ED),
    (3, "ET: enhancing tumour", ("108369006", "Neoplasm"), label_conv.ET),
)
_ABNORMAL = ("49755003", "Morphologically Abnormal Structure")


#: attributes a SEG copies from its source images that an export may lack (type 2: present, maybe empty)
_PATIENT_AND_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def _sources(files: list[str]) -> list:
    """The source images' headers, in memory, with empty values where an export left out a type 2
    attribute the SEG must carry (the files themselves are never changed)."""
    import pydicom

    try:
        sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    except Exception as exc:  # noqa: BLE001 - the study moved, or a file was replaced
        reason = exception_reason(exc)
        raise OutputError(files[0], f"the source series cannot be read to reference it ({reason})") from None
    for ds in sources:
        for name in _PATIENT_AND_STUDY:
            if name not in ds:
                setattr(ds, name, "")
    return sources


def _frames(canonical: np.ndarray, grid: ReferenceGrid) -> np.ndarray:
    """RAS+ data on the case grid -> (slices, rows, columns), the reference series' own frames."""
    return np.ascontiguousarray(geometry.from_canonical(canonical, grid.affine).transpose(2, 1, 0))


def _description(number: int, label: str, code: tuple[str, str], algorithm):
    import highdicom as hd
    from pydicom.sr.coding import Code

    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=Code(_ABNORMAL[0], "SCT", _ABNORMAL[1]),
        segmented_property_type=Code(code[0], "SCT", code[1]),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )


def _write(seg, path: Path, overwrite: bool) -> Path:
    return atomic_write(path, lambda tmp: seg.save_as(tmp, enforce_file_format=True), overwrite=overwrite)


def write_dicom_segs(
    mask: np.ndarray,
    grid: ReferenceGrid,
    reference_files: list[str],
    mask_path: str | Path,
    *,
    trustmap: np.ndarray | None = None,
    trustmap_path: str | Path | None = None,
    edited: bool = False,
    overwrite: bool = False,
    version: str = "",
) -> dict[str, Path]:
    """Write the mask (and the TrustMap) as DICOM-SEG files, each atomically. ``mask`` holds the
    internal BraTS 2021 labels on the case grid (RAS+), ``reference_files`` the reference series'
    files in slice order; ``edited``: a reviewer corrected the mask (its segments are then
    SEMIAUTOMATIC)."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    sources = _sources(reference_files)
    if len(sources) != grid.shape[2]:
        raise OutputError(
            mask_path, f"the source series has {len(sources)} images, the case grid {grid.shape[2]} slices"
        )
    algorithm = hd.AlgorithmIdentificationSequence(name="napari-entrust", family=_code_family(), version=version or "0")
    common = {
        "source_images": sources,
        "series_number": 9000,
        "instance_number": 1,
        "manufacturer": "napari-entrust",
        "manufacturer_model_name": "EnTrust",
        "software_versions": version or "0",
        "device_serial_number": "0",
        "omit_empty_frames": False,
    }
    labels = np.zeros(mask.shape, np.uint8)
    for number, _, _, value in SEGMENTS:
        labels[mask == value] = number
    segments = [_description(n, lab, code, algorithm) for n, lab, code, _ in SEGMENTS]
    for s in segments if edited else []:
        s.SegmentAlgorithmType = "SEMIAUTOMATIC"
    mask_seg = hd.seg.Segmentation(
        pixel_array=_frames(labels, grid),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=generate_uid(),
        sop_instance_uid=generate_uid(),
        series_description="EnTrust mask (corrected)" if edited else "EnTrust mask",
        **common,
    )
    out = {"mask": _write(mask_seg, Path(mask_path), overwrite)}
    if trustmap is not None and trustmap_path is not None:
        trust = _description(1, "TrustMap: calibrated uncertainty", ("108369006", "Neoplasm"), algorithm)
        trust_seg = hd.seg.Segmentation(
            pixel_array=_frames(np.clip(trustmap, 0.0, 1.0).astype(np.float32), grid),
            segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
            fractional_type=hd.seg.SegmentationFractionalTypeValues.PROBABILITY,
            segment_descriptions=[trust],
            series_instance_uid=generate_uid(),
            sop_instance_uid=generate_uid(),
            series_description="EnTrust TrustMap",
            **common,
        )
        out["trustmap"] = _write(trust_seg, Path(trustmap_path), overwrite)
    return out


def _code_family():
    from pydicom.sr.codedict import codes

    return codes.DCM.ArtificialIntelligence
