"""``entrust evaluate``: prediction folders against ground truth, per case and aggregated.

A prediction folder is what ``entrust predict`` (or a benchmark baseline) writes: ``mask`` is
required; ``prob``, ``trustmap`` and ``samples`` enable the calibration, uncertainty and
multi-hypothesis metrics. Ground truth comes from :mod:`.ground_truth`. Both sides are read in
RAS+ and must lie on the same grid. Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import geometry
from ..io.files import write_json, write_text
from ..io.labels import to_regions
from ..io.output_folder import output_folder, top_names
from ..model.trustmap import uncertainty
from ..outputs.prediction_folder import MASK_FILE, PredictionFiles, load_prediction
from ..progress import Steps, run_to_end
from . import metrics
from .ground_truth import Truth, load_truth
from .plots import plot_files, write_plots


def regions_per_sample(labels: np.ndarray) -> np.ndarray:
    """(N, ...) label maps -> (N, 3, ...) bool."""
    return np.stack([to_regions(s) for s in labels])


def evaluate_case(pred: PredictionFiles, truth: Truth) -> dict:
    """Every metric the inputs allow, as one flat row (NaN where a metric is undefined or not available).

    The region of interest (ROI) is the union of predicted and true whole tumour grown by 5 mm:
    calibration in it, and the uncertainty-quality metrics, are about the lesion, not the millions
    of trivially certain background voxels.
    """
    if not geometry.same_grid(pred.mask.shape, pred.affine, truth.labels.shape, truth.affine):
        raise InputError(
            pred.folder / MASK_FILE,
            f"is on grid {pred.mask.shape} {np.round(pred.affine, 3).tolist()}, the ground truth "
            f"{truth.source} on {truth.labels.shape} {np.round(truth.affine, 3).tolist()}; "
            "they must be the same grid",
        )
    spacing = truth.spacing
    gt, pr = to_regions(truth.labels), to_regions(pred.mask)
    row: dict = {"case": truth.name, "prediction": str(pred.folder)}
    row.update(metrics.dice_hd95(pr, gt, spacing))
    roi = metrics.lesion_neighbourhood(gt[0] | pr[0], spacing)
    brain = truth.brain if truth.brain is not None else np.ones(gt.shape[1:], bool)
    curves: dict = {}
    if pred.prob is not None:
        row.update(
            {
                "ece": metrics.ece(pred.prob, gt),
                "ece_roi": metrics.ece(pred.prob, gt, roi),
                "brier": metrics.brier(pred.prob, gt),
                "brier_roi": metrics.brier(pred.prob, gt, roi),
                "nll": metrics.nll(pred.prob, gt),
                "nll_roi": metrics.nll(pred.prob, gt, roi),
            }
        )
        curves["reliability_roi"] = metrics.reliability_bins(pred.prob, gt, roi)
    error = (pr != gt).any(0)
    if pred.trustmap is not None:
        row.update(metrics.error_detection(pred.trustmap[roi], error[roi]))
        row["ueo"] = metrics.ueo(pred.trustmap[roi], error[roi])
        curves["uncertainty_error_roi"] = metrics.uncertainty_error_bins(pred.trustmap[roi], error[roi])
    region_uncertainty = (
        uncertainty(pred.prob)
        if pred.prob is not None
        else (np.stack([pred.trustmap] * 3) if pred.trustmap is not None else None)
    )
    if region_uncertainty is not None:
        row.update(metrics.qu_brats(region_uncertainty, pr, gt, brain))
    sample_regions = regions_per_sample(pred.samples) if pred.samples is not None else None
    if truth.raters is not None:
        s = sample_regions if sample_regions is not None else pr[None]
        r = regions_per_sample(truth.raters)
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
    return (folder / MASK_FILE).exists()


def pair_cases(pred_dir: str | Path, gt: str | Path) -> list[tuple[Path, Path]]:
    """(prediction folder, ground truth) pairs: one folder and one truth, or sub-folders matched by name."""
    pred_dir, gt = Path(pred_dir), Path(gt)
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "is not a folder of predictions")
    if _is_prediction(pred_dir):
        return [(pred_dir, gt)]
    preds = {p.name: p for p in sorted(pred_dir.iterdir()) if p.is_dir() and _is_prediction(p)}
    if not preds:
        raise InputError(pred_dir, f"holds no {MASK_FILE} and no sub-folders with one")
    if not gt.is_dir():
        raise InputError(
            gt,
            f"is one file, but {pred_dir} holds {len(preds)} predictions; give a folder of "
            "ground-truth cases named like the prediction folders",
        )
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
    hd_undefined = {
        f"hd95_undefined_{r}": sum(1 for row in rows if not math.isfinite(row.get(f"hd95_{r}", 0.0)))
        for r in ("WT", "TC", "ET")
    }
    scored = [r for r in rows if math.isfinite(r.get("case_score", float("nan")))]
    ranking = metrics.case_ranking([r["case_score"] for r in scored], [r["dice_WT"] for r in scored])
    return {"cases": len(rows), "mean": mean, "curves": curves, **hd_undefined, "case_score_vs_error_spearman": ranking}


def evaluate(pred_dir: str | Path, gt: str | Path) -> dict:
    """:func:`run_evaluation` without progress."""
    return run_to_end(run_evaluation(pred_dir, gt))


def run_evaluation(pred_dir: str | Path, gt: str | Path) -> Steps[dict]:
    """Evaluate every prediction under ``pred_dir`` against ``gt``; returns per-case rows and the aggregate."""
    pairs = pair_cases(pred_dir, gt)
    rows, warnings = [], []
    for i, (p, g) in enumerate(pairs):
        yield i / len(pairs), f"evaluating {p.name}"
        pred = load_prediction(p)
        warnings += missing_outputs(pred)
        rows.append(evaluate_case(pred, load_truth(g)))
    yield 1.0, "done"
    return {
        "prediction": str(pred_dir),
        "ground_truth": str(gt),
        "per_case": rows,
        "aggregate": aggregate(rows),
        "warnings": warnings,
    }


#: outputs evaluation uses beyond the mask, and what is left out without each
OPTIONAL_OUTPUTS = {
    "prob": "calibration (ECE, Brier, NLL) is left out and QU-BraTS uses the TrustMap for every region",
    "trustmap": "error detection, UEO and conflict localisation are left out",
    "samples": "GED and Hungarian IoU compare the mask alone with the raters",
}


def missing_outputs(pred) -> list[str]:
    """One warning per output a prediction folder lacks, saying which numbers change without it."""
    return [
        f"{pred.folder / f'{name}.nii.gz'} is missing: {effect}"
        for name, effect in OPTIONAL_OUTPUTS.items()
        if getattr(pred, name) is None
    ]


def evaluation_files(out_dir: Path) -> dict[str, Path]:
    """The files :func:`write_evaluation` writes (checked before any work is done)."""
    return {"csv": out_dir / "cases.csv", "json": out_dir / "evaluation.json", **plot_files(out_dir)}


def write_evaluation(result: dict, out_dir: str | Path, *, overwrite: bool = False, label: str = "") -> dict[str, Path]:
    """cases.csv (one row per case), evaluation.json (everything), reliability and uncertainty-error plots."""
    out_dir = Path(out_dir)
    files = evaluation_files(out_dir)
    with output_folder(out_dir, overwrite=overwrite, ours=top_names(out_dir, files.values())) as staging:
        _write_evaluation(result, staging, label)
    return files


def _write_evaluation(result: dict, out_dir: Path, label: str) -> None:
    rows = [{k: v for k, v in r.items() if k != "_curves"} for r in result["per_case"]]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    files = evaluation_files(out_dir)
    write_text(files["csv"], buf.getvalue())
    write_json(files["json"], result)
    write_plots({label or Path(result["prediction"]).name: result["aggregate"]["curves"]}, out_dir)
