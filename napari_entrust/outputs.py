"""Writing a prediction: NIfTI on the reference input's grid, plus ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import geometry
from .case import Case
from .engine import Prediction
from .errors import InputError
from .labels import from_internal
from .nifti import atomic_write, check_writable
from .validity import ValidityReport


def output_files(modalities, out_dir: Path) -> dict[str, Path]:
    """The files a prediction writes (so they can be checked before any work is done)."""
    names = ["mask", "prob", "samples", "trustmap", "entropy", "mutual_info", "probe", "consensus", "conflict"]
    names += [f"specific_{m}" for m in modalities] + [f"weights_{m}" for m in modalities]
    files = {n: out_dir / f"{n}.nii.gz" for n in names}
    files["summary"] = out_dir / "summary.json"
    return files


#: how each standard output is stored: dtype and NIfTI description
_FORMATS = {
    "mask": (np.uint8, "label map"), "prob": (np.float32, "p(WT),p(TC),p(ET)"), "samples": (np.uint8, "K hypotheses"),
    "trustmap": (np.float32, "TrustMap (1 = most uncertain)"),
    "entropy": (np.float32, "total entropy (bits), max over regions"),
    "mutual_info": (np.float32, "mutual information, max over regions"),
    "probe": (np.float32, "conflict probe sensitivity"), "consensus": (np.float32, "|F_c|"),
    "conflict": (np.float32, "|F_cf|"),
}


def write_arrays(case: Case, maps: dict[str, np.ndarray], out_dir: str | Path, summary: dict, *,
                 overwrite: bool = False, label_convention: str = "brats2021") -> dict[str, Path]:
    """Write named maps as ``NAME.nii.gz`` on the case's reference grid, plus ``summary.json``.

    ``mask`` and ``samples`` hold internal labels (written in ``label_convention``); ``prob``
    (3, ...) and ``samples`` (K, ...) become 4-D files with the channel last. Nothing is written if
    any target exists and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    files = {n: out_dir / f"{n}.nii.gz" for n in maps}
    files["summary"] = out_dir / "summary.json"
    check_writable(list(files.values()), overwrite)
    for name, data in maps.items():
        dtype, description = _FORMATS.get(name, (np.float32, name.replace("specific_", "|F_u| ").replace(
            "weights_", "modality weight ")))
        if name in ("mask", "samples"):
            data = from_internal(data, label_convention)
        if name in ("prob", "samples"):
            data = np.moveaxis(data, 0, -1)
        case.write(data, files[name], overwrite=overwrite, dtype=dtype, description=description)
    summary = {**summary, "label_convention": label_convention, "files": {k: p.name for k, p in files.items()}}
    atomic_write(files["summary"], lambda tmp: tmp.write_text(json.dumps(summary, indent=2)), overwrite=overwrite)
    return files


def write_prediction(case: Case, pred: Prediction, out_dir: str | Path, *, overwrite: bool = False,
                     label_convention: str = "brats2021") -> dict[str, Path]:
    """Write every output of an EnTrust prediction (see :func:`output_files`) and ``summary.json``.

    Label maps use ``label_convention`` (BraTS 2021: ET = 4; pass ``brats2023`` for ET = 3).
    """
    maps = {"mask": pred.mask, "prob": pred.prob, "samples": pred.samples, "trustmap": pred.trustmap,
            "entropy": pred.entropy, "mutual_info": pred.mutual_info, "probe": pred.probe,
            "consensus": pred.consensus, "conflict": pred.conflict,
            **{f"specific_{m}": v for m, v in pred.specific.items()},
            **{f"weights_{m}": v for m, v in pred.weights.items()}}
    return write_arrays(case, maps, out_dir, pred.summary, overwrite=overwrite, label_convention=label_convention)


def read_prediction(out_dir: str | Path, case: Case) -> Prediction:
    """Read back what :func:`write_prediction` wrote for ``case`` (e.g. to review a worklist case later).

    Every file must exist and lie on the case's reference grid; a missing or foreign file is an
    :class:`InputError` naming it.
    """
    from .evaluation import load_prediction, read_output_map

    out_dir = Path(out_dir)
    saved = load_prediction(out_dir)  # mask, prob, trustmap, samples and summary, checked against each other
    if not geometry.same_grid(saved.mask.shape, saved.affine, case.shape, case.affine):
        raise InputError(out_dir / "mask.nii.gz", f"is not on the grid of case {case.name} ({case.grid.path})")
    modalities = list(case.modalities)
    names = [n for n in output_files(modalities, out_dir) if n not in ("mask", "prob", "trustmap", "samples", "summary")]
    maps = {}
    for name in names:
        data = read_output_map(out_dir, name, saved.mask.shape, saved.affine)
        if data is None:
            raise InputError(out_dir / f"{name}.nii.gz", "is missing; the prediction folder is incomplete")
        maps[name] = data
    for name, data in (("prob", saved.prob), ("trustmap", saved.trustmap), ("samples", saved.samples)):
        if data is None:
            raise InputError(out_dir / f"{name}.nii.gz", "is missing; the prediction folder is incomplete")
    report = saved.summary.get("validity")
    return Prediction(
        mask=saved.mask, prob=saved.prob, samples=saved.samples.astype(np.uint8), trustmap=saved.trustmap,
        entropy=maps["entropy"], mutual_info=maps["mutual_info"], probe=maps["probe"],
        consensus=maps["consensus"], conflict=maps["conflict"],
        specific={m: maps[f"specific_{m}"] for m in modalities}, weights={m: maps[f"weights_{m}"] for m in modalities},
        validity=ValidityReport(**report) if report else None, summary=saved.summary)
