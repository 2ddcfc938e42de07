"""A prediction folder on disk: NIfTI files on the reference input's grid plus ``summary.json``.

What ``entrust predict`` (and every benchmark method) writes, and reads back: ``entrust
evaluate`` needs only the mask (prob, trustmap and samples when present), the worklist and
``entrust explain --prediction`` need every output. Each file is checked to lie on the mask's
grid; a missing or foreign file is an :class:`InputError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inference.prediction import Prediction
from ..inference.validity import ValidityReport
from ..io import geometry
from ..io.case import Case
from ..io.files import write_text
from ..io.labels import CONVENTIONS, from_internal, guess_convention, to_internal, unexpected_values
from ..io.loader import read_label_file
from ..io.nifti import read_nifti
from ..io.output_folder import check_output_folder, output_folder, staged, top_names
from ..io.parallel import in_parallel
from .catalog import SUMMARY_FILE, from_maps, maps_of, output_of, prediction_files
from .dicom_seg import write_dicom_segs
from .provenance import input_hashes

MASK_FILE = "mask.nii.gz"
SEG_FILES = ("mask.seg.dcm", "trustmap.seg.dcm")  #: the DICOM-SEG outputs (:mod:`.dicom_seg`) of a DICOM study
EVALUATION_FOLDER = "evaluation"  #: where ``entrust evaluate`` writes by default, inside the prediction folder


def write_arrays(
    case: Case,
    maps: dict[str, np.ndarray],
    out_dir: str | Path,
    summary: dict,
    *,
    overwrite: bool = False,
    label_convention: str = "brats2021",
    also: Callable[[Path], None] | None = None,
) -> dict[str, Path]:
    """Write named maps as ``NAME.nii.gz`` on the case's reference grid, plus ``summary.json``
    (and whatever ``also(folder)`` writes of :data:`SEG_FILES` into the folder).

    Names are file stems of :data:`~.catalog.OUTPUTS` (``mask``, ``prob``, ``specific_t1`` …), which
    say how each is stored: label maps in ``label_convention``, ``prob`` (3, ...) and ``samples``
    (K, ...) as 4-D files with the channel last. The folder is written whole or not at all
    (:func:`~..io.output_folder.output_folder`): nothing is written if it holds anything and
    ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    files = {n: out_dir / f"{n}.nii.gz" for n in maps}
    if also is not None:
        files.update({name.split(".")[0] + "_seg": out_dir / name for name in SEG_FILES})
    files["summary"] = out_dir / SUMMARY_FILE
    with output_folder(out_dir, overwrite=overwrite, ours=prediction_entries(files.values(), out_dir)) as staging:
        written = staged(files, out_dir, staging)
        in_parallel(
            [partial(_write_map, case, name, data, written[name], label_convention) for name, data in maps.items()]
        )
        if also is not None:
            also(staging)
        summary = {**summary, "label_convention": label_convention, "files": {k: p.name for k, p in files.items()}}
        write_text(written["summary"], json.dumps(summary, indent=2))
    return files


def _write_map(case: Case, name: str, data: np.ndarray, path: Path, label_convention: str) -> None:
    """One output as NIfTI, stored as the catalog says (label values, channel order, type)."""
    output, modality = output_of(name) or (None, None)
    if output is not None and output.labels:
        data = from_internal(data, label_convention)
    if output is not None and output.stack:
        data = np.moveaxis(data, 0, -1)
    case.write(
        data,
        path,
        dtype=output.dtype if output else np.float32,
        description=output.describe(modality) if output else name,
        scaled=output.scaled if output else False,
    )


def prediction_entries(files, out_dir: Path) -> set[str]:
    """What an earlier prediction in ``out_dir`` may hold, all of which ``--overwrite`` replaces: its
    files and the evaluation ``entrust evaluate`` writes inside it by default (it was of that prediction)."""
    return top_names(out_dir, files) | {EVALUATION_FOLDER, *SEG_FILES}


def check_prediction_folder(modalities, out_dir: str | Path, overwrite: bool) -> None:
    """Before any work: can a prediction be written to ``out_dir``? (:func:`..io.output_folder.check_output_folder`)"""
    out_dir = Path(out_dir)
    check_output_folder(out_dir, overwrite, prediction_entries(prediction_files(modalities, out_dir).values(), out_dir))


def write_prediction(
    case: Case,
    pred: Prediction,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    label_convention: str = "brats2021",
    dicom_seg: bool = False,
) -> dict[str, Path]:
    """Write every output of an EnTrust prediction (see :func:`~.catalog.prediction_files`) and ``summary.json``.

    Label maps use ``label_convention`` (BraTS 2021: ET = 4; pass ``brats2023`` for ET = 3).
    ``dicom_seg``: also the mask and the TrustMap as DICOM-SEG (:mod:`.dicom_seg`), for a case read
    from a DICOM study.
    """
    summary = {**pred.summary, "input_sha256": _input_sha256(case)}  # so a reader can tell the inputs apart
    also = None
    if dicom_seg:
        if not case.dicom_reference:
            raise InputError(case.name, "--format dicom-seg needs a case read from a DICOM study")

        def also(folder: Path) -> None:
            version = str(pred.summary.get("model", {}).get("sha256", ""))[:16]
            mask, trust = (folder / name for name in SEG_FILES)
            write_dicom_segs(
                pred.mask,
                case.grid,
                case.dicom_reference,
                mask,
                trustmap=pred.trustmap,
                trustmap_path=trust,
                version=version,
            )

    return write_arrays(
        case, maps_of(pred), out_dir, summary, overwrite=overwrite, label_convention=label_convention, also=also
    )


@dataclass
class PredictionFiles:
    """What evaluation reads of a prediction folder (RAS+, internal labels)."""

    folder: Path
    mask: np.ndarray  #: internal labels, RAS+
    affine: np.ndarray
    prob: np.ndarray | None  #: (3, ...)
    trustmap: np.ndarray | None
    samples: np.ndarray | None  #: (K, ...) internal labels
    summary: dict


def read_labels_ras(path: Path, convention: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """A label map checked as in a case, in RAS+ with its RAS+ affine."""
    vol, _ = read_label_file(path, convention)
    return geometry.to_canonical(vol.data, vol.affine)


def _summary(folder: Path) -> dict:
    path = folder / SUMMARY_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"is not valid JSON ({exc})") from None


def load_prediction(folder: str | Path) -> PredictionFiles:
    """The mask, and prob / trustmap / samples when present, checked against each other."""
    folder = Path(folder)
    mask_path = folder / MASK_FILE
    if not mask_path.exists():
        raise InputError(folder, f"holds no {MASK_FILE}; expected an `entrust predict` output folder")
    summary = _summary(folder)
    convention = summary.get("label_convention", "auto")
    if convention not in CONVENTIONS:
        convention = "auto"
    mask, affine = read_labels_ras(mask_path, convention)
    prob = read_output_map(folder, "prob", mask.shape, affine, channels=3)
    trust = read_output_map(folder, "trustmap", mask.shape, affine)
    samples = read_output_map(folder, "samples", mask.shape, affine, channels=-1)
    if samples is not None:
        values = {int(v) for v in np.unique(samples)}
        conv = convention if convention != "auto" else guess_convention(values, "")
        unexpected = unexpected_values(values, conv)
        if unexpected:
            raise InputError(folder / "samples.nii.gz", f"holds label values {unexpected} that {conv} does not define")
        samples = to_internal(samples, conv)
    return PredictionFiles(folder, mask, affine, prob, trust, samples, summary)


def read_output_map(
    folder: Path, name: str, shape, affine: np.ndarray, *, channels: int | None = None
) -> np.ndarray | None:
    """``folder/NAME.nii.gz`` in RAS+ (channels first), checked to lie on the mask's grid; None if absent.

    ``channels``: None for a 3-D map, a count for a 4-D stack that must have it, -1 for any count
    (``samples``, kept in its stored integer type).
    """
    p = folder / f"{name}.nii.gz"
    if not p.exists():
        return None
    vol = read_nifti(p, ndim=3 if channels is None else 4, dtype=None if name == "samples" else np.float32)
    data, aff = geometry.to_canonical(vol.data, vol.affine)
    if not geometry.same_grid(data.shape[:3], aff, shape, affine):
        raise InputError(p, f"is not on the grid of {MASK_FILE}")
    if channels is not None:
        data = np.moveaxis(data, -1, 0)
        if channels > 0 and data.shape[0] != channels:
            raise InputError(p, f"has {data.shape[0]} volumes; expected {channels}")
    if name != "samples" and not np.isfinite(data).all():
        raise InputError(p, "contains NaN/Inf voxels")
    return data


def _input_sha256(case: Case) -> dict[str, str]:
    """sha256 of each input file of ``case`` (inputs made in memory have none)."""
    return {m: e["sha256"] for m, e in input_hashes(case.sources, case.dicom_series).items() if e["sha256"]}


def _check_made_from(summary: dict, case: Case, out_dir: Path) -> None:
    """Refuse a prediction whose summary says it was made from other input files than ``case``'s
    (same grid is not enough: another scan of the same size would pass that check)."""
    recorded, hashes = summary.get("inputs", {}), summary.get("input_sha256", {})
    for modality, source in case.sources.items():
        path = Path(str(source))
        if modality not in recorded or not path.is_file():
            continue  # an older prediction, or a case made in memory: nothing to compare
        if Path(str(recorded[modality])).resolve() != path.resolve():
            raise InputError(
                out_dir / SUMMARY_FILE, f"was made from {recorded[modality]} for {modality}, not from {path}"
            )
    current = _input_sha256(case) if hashes else {}
    for modality, digest in current.items():
        if modality in hashes and hashes[modality] != digest:
            raise InputError(
                out_dir / SUMMARY_FILE,
                f"was made from another version of {case.sources[modality]} (its sha256 differs)",
            )


def read_prediction(out_dir: str | Path, case: Case) -> Prediction:
    """Read back what :func:`write_prediction` wrote for ``case`` (e.g. to review a worklist case later).

    Every file must exist and lie on the case's reference grid; a missing or foreign file is an
    :class:`InputError` naming it.
    """
    out_dir = Path(out_dir)
    saved = load_prediction(out_dir)  # mask, prob, trustmap, samples and summary, checked against each other
    if not geometry.same_grid(saved.mask.shape, saved.affine, case.shape, case.affine):
        raise InputError(out_dir / MASK_FILE, f"is not on the grid of case {case.name} ({case.grid.path})")
    _check_made_from(saved.summary, case, out_dir)
    maps = {"mask": saved.mask, "prob": saved.prob, "trustmap": saved.trustmap, "samples": saved.samples}
    for name in prediction_files(case.modalities, out_dir):
        if name not in maps and name != "summary":
            maps[name] = read_output_map(out_dir, name, saved.mask.shape, saved.affine)
    for name, data in maps.items():
        if data is None:
            raise InputError(out_dir / f"{name}.nii.gz", "is missing; the prediction folder is incomplete")
    maps["samples"] = maps["samples"].astype(np.uint8)
    report = saved.summary.get("validity")
    return from_maps(
        maps, case.modalities, validity=ValidityReport(**report) if report else None, summary=saved.summary
    )
