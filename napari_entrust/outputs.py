"""Writing a prediction: NIfTI on the reference input's grid, plus ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .case import Case
from .engine import Prediction
from .labels import from_internal
from .nifti import atomic_write, check_writable


def output_files(modalities, out_dir: Path) -> dict[str, Path]:
    """The files a prediction writes (so they can be checked before any work is done)."""
    names = ["mask", "prob", "samples", "trustmap", "entropy", "mutual_info", "probe", "consensus", "conflict"]
    names += [f"specific_{m}" for m in modalities] + [f"weights_{m}" for m in modalities]
    files = {n: out_dir / f"{n}.nii.gz" for n in names}
    files["summary"] = out_dir / "summary.json"
    return files


def write_prediction(case: Case, pred: Prediction, out_dir: str | Path, *, overwrite: bool = False,
                     label_convention: str = "brats2021") -> dict[str, Path]:
    """Write every output; nothing is written if any target exists and ``overwrite`` is False.

    Label maps use ``label_convention`` (BraTS 2021: ET = 4; pass ``brats2023`` for ET = 3).
    Multi-channel outputs are 4-D: ``prob`` holds WT, TC, ET; ``samples`` holds the K hypotheses.
    """
    out_dir = Path(out_dir)
    files = output_files(list(pred.specific), out_dir)
    check_writable(list(files.values()), overwrite)
    arrays = {
        "mask": (from_internal(pred.mask, label_convention), np.uint8, "EnTrust mask"),
        "prob": (np.moveaxis(pred.prob, 0, -1), np.float32, "p(WT),p(TC),p(ET) calibrated"),
        "samples": (np.moveaxis(np.stack([from_internal(s, label_convention) for s in pred.samples]), 0, -1),
                    np.uint8, "K hypotheses"),
        "trustmap": (pred.trustmap, np.float32, "TrustMap (1 = most uncertain)"),
        "entropy": (pred.entropy, np.float32, "total entropy (bits), max over regions"),
        "mutual_info": (pred.mutual_info, np.float32, "mutual information, max over regions"),
        "probe": (pred.probe, np.float32, "conflict probe sensitivity"),
        "consensus": (pred.consensus, np.float32, "|F_c|"),
        "conflict": (pred.conflict, np.float32, "|F_cf|"),
        **{f"specific_{m}": (v, np.float32, f"|F_u,{m}|") for m, v in pred.specific.items()},
        **{f"weights_{m}": (v, np.float32, f"modality weight {m}") for m, v in pred.weights.items()},
    }
    for name, (data, dtype, description) in arrays.items():
        case.write(data, files[name], overwrite=overwrite, dtype=dtype, description=description)
    summary = {**pred.summary, "label_convention": label_convention,
               "files": {k: p.name for k, p in files.items()}}
    atomic_write(files["summary"], lambda tmp: tmp.write_text(json.dumps(summary, indent=2)), overwrite=overwrite)
    return files
