"""``entrust evaluate``: prediction folders against ground truth, per case and aggregated.

A prediction folder is what ``entrust predict`` (or a benchmark baseline) writes: ``mask`` is
required; ``prob``, ``trustmap`` and ``samples`` enable the calibration, uncertainty and
multi-hypothesis metrics. Ground truth is a label file, a case folder with a label map, or a
phantom folder whose ``truth/`` holds raters and the conflict mask. Both sides are read in RAS+
and must lie on the same grid. Metrics: :mod:`napari_entrust.metrics`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import geometry, metrics
from .errors import InputError
from .io import load_case, read_label_file
from .labels import CONVENTIONS, guess_convention, to_internal, to_regions, unexpected_values
from .nifti import atomic_write, check_writable, read_nifti
from .normalize import head_mask

PREDICTION_FILE = "mask.nii.gz"


@dataclass
class Truth:
    name: str
    source: Path
    labels: np.ndarray  #: internal labels, RAS+
    affine: np.ndarray  #: RAS+ affine
    raters: np.ndarray | None = None  #: (R, ...) internal labels
    conflict: np.ndarray | None = None  #: bool
    brain: np.ndarray | None = None  #: bool; None: unknown (the whole volume is used)

    @property
    def spacing(self) -> np.ndarray:
        return geometry.voxel_sizes(self.affine)


@dataclass
class PredictionFiles:
    folder: Path
    mask: np.ndarray  #: internal labels, RAS+
    affine: np.ndarray
    prob: np.ndarray | None  #: (3, ...)
    trustmap: np.ndarray | None
    samples: np.ndarray | None  #: (K, ...) internal labels
    summary: dict


def _read_labels_ras(path: Path, convention: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    vol, _ = read_label_file(path, convention)
    return geometry.to_canonical(vol.data, vol.affine)


def load_truth(path: str | Path) -> Truth:
    """Ground truth from a label file, a labelled case folder, or a phantom folder (with raters)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_file():
        labels, affine = _read_labels_ras(path)
        return Truth(path.name.split(".")[0], path, labels, affine)
    meta_path = path / "truth" / "phantom.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    source = path / meta["files"]["image"] if meta and meta.get("format") == "msd" else path
    case = load_case(source)
    if case.labels is None:
        raise InputError(path, "has no label map (*_seg file or labelsTr/); evaluation needs the ground truth")
    truth = Truth(meta["name"] if meta else case.name, path, case.labels, case.grid.canonical_affine,
                  brain=head_mask(case.images))
    if meta:
        files = meta["files"]
        convention = meta.get("label_convention", "auto")

        def on_grid(name: str, data: np.ndarray, affine: np.ndarray) -> np.ndarray:
            if not geometry.same_grid(data.shape, affine, truth.labels.shape, truth.affine):
                raise InputError(path / files[name], f"is not on the grid of the case's label map {case.label_source}")
            return data

        raters = [on_grid(f"rater{r + 1}", *_read_labels_ras(path / files[f"rater{r + 1}"], convention))
                  for r in range(meta["n_raters"])]
        truth.raters = np.stack(raters) if raters else None
        conflict = read_nifti(path / files["conflict"])
        truth.conflict = on_grid("conflict", *geometry.to_canonical(conflict.data, conflict.affine)) > 0
    return truth


def load_prediction(folder: str | Path) -> PredictionFiles:
    folder = Path(folder)
    mask_path = folder / PREDICTION_FILE
    if not mask_path.exists():
        raise InputError(folder, f"holds no {PREDICTION_FILE}; expected an `entrust predict` output folder")
    summary_path = folder / "summary.json"
    summary = {}
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(summary_path, f"is not valid JSON ({exc})") from None
    convention = summary.get("label_convention", "auto")
    if convention not in CONVENTIONS:
        convention = "auto"
    mask, affine = _read_labels_ras(mask_path, convention)

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


def read_output_map(folder: Path, name: str, shape, affine: np.ndarray, *, channels: int | None = None
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
        raise InputError(p, f"is not on the grid of {PREDICTION_FILE}")
    if channels is not None:
        data = np.moveaxis(data, -1, 0)
        if channels > 0 and data.shape[0] != channels:
            raise InputError(p, f"has {data.shape[0]} volumes; expected {channels}")
    if name != "samples" and not np.isfinite(data).all():
        raise InputError(p, "contains NaN/Inf voxels")
    return data


def _regions_per_sample(labels: np.ndarray) -> np.ndarray:
    """(N, ...) label maps -> (N, 3, ...) bool."""
    return np.stack([to_regions(s) for s in labels])


def evaluate_case(pred: PredictionFiles, truth: Truth) -> dict:
    """Every metric the inputs allow, as one flat row (NaN where a metric is undefined or not available).

    The region of interest (ROI) is the union of predicted and true whole tumour grown by 5 mm:
    calibration in it, and the uncertainty-quality metrics, are about the lesion, not the millions
    of trivially certain background voxels.
    """
    if not geometry.same_grid(pred.mask.shape, pred.affine, truth.labels.shape, truth.affine):
        raise InputError(pred.folder / PREDICTION_FILE,
                         f"is on grid {pred.mask.shape} {np.round(pred.affine, 3).tolist()}, the ground truth "
                         f"{truth.source} on {truth.labels.shape} {np.round(truth.affine, 3).tolist()}; "
                         "they must be the same grid")
    spacing = truth.spacing
    gt, pr = to_regions(truth.labels), to_regions(pred.mask)
    row: dict = {"case": truth.name, "prediction": str(pred.folder)}
    row.update(metrics.dice_hd95(pr, gt, spacing))
    roi = metrics.lesion_neighbourhood(gt[0] | pr[0], spacing)
    brain = truth.brain if truth.brain is not None else np.ones(gt.shape[1:], bool)
    curves: dict = {}
    if pred.prob is not None:
        row.update({"ece": metrics.ece(pred.prob, gt), "ece_roi": metrics.ece(pred.prob, gt, roi),
                    "brier": metrics.brier(pred.prob, gt), "brier_roi": metrics.brier(pred.prob, gt, roi),
                    "nll": metrics.nll(pred.prob, gt), "nll_roi": metrics.nll(pred.prob, gt, roi)})
        curves["reliability_roi"] = metrics.reliability_bins(pred.prob, gt, roi)
    error = (pr != gt).any(0)
    if pred.trustmap is not None:
        row.update(metrics.error_detection(pred.trustmap[roi], error[roi]))
        row["ueo"] = metrics.ueo(pred.trustmap[roi], error[roi])
        curves["uncertainty_error_roi"] = metrics.uncertainty_error_bins(pred.trustmap[roi], error[roi])
    region_uncertainty = (1 - np.abs(2 * pred.prob - 1)) if pred.prob is not None else \
        (np.stack([pred.trustmap] * 3) if pred.trustmap is not None else None)
    if region_uncertainty is not None:
        row.update(metrics.qu_brats(region_uncertainty, pr, gt, brain))
    sample_regions = _regions_per_sample(pred.samples) if pred.samples is not None else None
    if truth.raters is not None:
        s = sample_regions if sample_regions is not None else pr[None]
        r = _regions_per_sample(truth.raters)
        row["ged"] = metrics.ged(s, r)
        row["hm_iou"] = metrics.hungarian_iou(s, r)
    if truth.conflict is not None and pred.trustmap is not None:
        samples_wt = sample_regions[:, 0] if sample_regions is not None else None
        row.update(metrics.conflict_localisation(pred.trustmap, truth.conflict, truth.labels > 0, spacing, samples_wt))
    score = pred.summary.get("case_score", {})
    if isinstance(score, dict) and "score" in score:
        row["case_score"] = float(score["score"])
    row["_curves"] = curves
    return row


# -- several cases -------------------------------------------------------------------------------

def _is_prediction(folder: Path) -> bool:
    return (folder / PREDICTION_FILE).exists()


def pair_cases(pred_dir: str | Path, gt: str | Path) -> list[tuple[Path, Path]]:
    """(prediction folder, ground truth) pairs: one folder and one truth, or sub-folders matched by name."""
    pred_dir, gt = Path(pred_dir), Path(gt)
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "is not a folder of predictions")
    if _is_prediction(pred_dir):
        return [(pred_dir, gt)]
    preds = {p.name: p for p in sorted(pred_dir.iterdir()) if p.is_dir() and _is_prediction(p)}
    if not preds:
        raise InputError(pred_dir, f"holds no {PREDICTION_FILE} and no sub-folders with one")
    if not gt.is_dir():
        raise InputError(gt, f"is one file, but {pred_dir} holds {len(preds)} predictions; give a folder of "
                             "ground-truth cases named like the prediction folders")
    truths = {p.name: p for p in sorted(gt.iterdir()) if p.is_dir()}
    missing = sorted(set(preds) - set(truths))
    if missing:
        raise InputError(gt, f"has no ground-truth case for {', '.join(missing)} (predictions in {pred_dir})")
    return [(preds[n], truths[n]) for n in preds]


def aggregate(rows: list[dict]) -> dict:
    """Mean of every numeric metric over cases (NaNs skipped) and the summed plotting bins."""
    keys = [k for k in rows[0] if k not in ("case", "prediction", "_curves")]
    mean = {}
    for k in keys:
        values = [r.get(k, float("nan")) for r in rows]
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        mean[k] = float(np.mean(finite)) if finite else float("nan")
    curves: dict = {}
    for r in rows:
        for name, bins in r["_curves"].items():
            target = curves.setdefault(name, {k: [0.0] * len(v) for k, v in bins.items()})
            for k, v in bins.items():
                target[k] = [a + b for a, b in zip(target[k], v)]
    hd_undefined = {f"hd95_undefined_{r}": sum(1 for row in rows if not math.isfinite(row.get(f"hd95_{r}", 0.0)))
                    for r in ("WT", "TC", "ET")}
    scored = [r for r in rows if math.isfinite(r.get("case_score", float("nan")))]
    ranking = metrics.case_ranking([r["case_score"] for r in scored], [r["dice_WT"] for r in scored])
    return {"cases": len(rows), "mean": mean, "curves": curves, **hd_undefined,
            "case_score_vs_error_spearman": ranking}


def evaluate(pred_dir: str | Path, gt: str | Path,
             progress: Callable[[float, str], None] | None = None) -> dict:
    """Evaluate every prediction under ``pred_dir`` against ``gt``; returns per-case rows and the aggregate."""
    pairs = pair_cases(pred_dir, gt)
    rows = []
    for i, (p, g) in enumerate(pairs):
        if progress:
            progress(i / len(pairs), f"evaluating {p.name}")
        rows.append(evaluate_case(load_prediction(p), load_truth(g)))
    if progress:
        progress(1.0, "done")
    return {"prediction": str(pred_dir), "ground_truth": str(gt), "per_case": rows, "aggregate": aggregate(rows)}


def output_files(out_dir: Path) -> dict[str, Path]:
    return {"csv": out_dir / "cases.csv", "json": out_dir / "evaluation.json",
            "reliability": out_dir / "reliability.png", "uncertainty_error": out_dir / "uncertainty_error.png"}


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, data: dict, overwrite: bool) -> None:
    """JSON with NaN/Inf as null (readable by any JSON parser), written atomically."""
    text = json.dumps(_json_safe(data), indent=2)
    atomic_write(path, lambda tmp: tmp.write_text(text), overwrite=overwrite)


def write_evaluation(result: dict, out_dir: str | Path, *, overwrite: bool = False, label: str = "") -> dict[str, Path]:
    """cases.csv (one row per case), evaluation.json (everything), reliability and uncertainty-error plots."""
    from .plots import reliability_diagram, uncertainty_error_plot

    out_dir = Path(out_dir)
    files = output_files(out_dir)
    check_writable(list(files.values()), overwrite)
    rows = [{k: v for k, v in r.items() if k != "_curves"} for r in result["per_case"]]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(files["csv"], lambda tmp: tmp.write_text(buf.getvalue()), overwrite=overwrite)
    write_json(files["json"], result, overwrite)
    curves = result["aggregate"]["curves"]
    name = label or Path(result["prediction"]).name
    reliability_diagram({name: curves.get("reliability_roi")}, files["reliability"], overwrite=overwrite)
    uncertainty_error_plot({name: curves.get("uncertainty_error_roi")}, files["uncertainty_error"], overwrite=overwrite)
    return files
