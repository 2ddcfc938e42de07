"""``entrust evaluate PRED_DIR GT``: Dice/HD95, calibration, uncertainty quality, hypotheses vs raters."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..evaluation import evaluate, output_files, write_evaluation
from ..nifti import check_writable
from ._args import add_overwrite_argument, progress_bar

#: (column, header, format) of the printed summary
SUMMARY_COLUMNS = (
    ("dice_WT", "Dice WT", ".3f"), ("dice_TC", "TC", ".3f"), ("dice_ET", "ET", ".3f"), ("hd95_WT", "HD95 WT", ".1f"),
    ("ece", "ECE", ".4f"), ("ece_roi", "ECE ROI", ".3f"), ("brier_roi", "Brier ROI", ".3f"),
    ("nll_roi", "NLL ROI", ".3f"), ("error_auroc", "err AUROC", ".3f"), ("ueo", "UEO", ".3f"),
    ("qu_brats", "QU-BraTS", ".3f"), ("ged", "GED", ".3f"), ("hm_iou", "HM-IoU", ".3f"),
    ("conflict_auroc", "conflict AUROC", ".3f"),
)


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score predictions against ground truth (per case and overall)",
                       description="Compare `entrust predict` output folders with ground truth: Dice and HD95 per "
                                   "region, calibration (ECE, Brier, NLL), uncertainty quality (error AUROC/AUPRC, "
                                   "UEO, QU-BraTS score), hypotheses vs raters (GED, Hungarian-matched IoU) and "
                                   "conflict localisation. Writes cases.csv, evaluation.json and two plots.")
    p.add_argument("predictions", type=Path, metavar="PRED_DIR",
                   help="an `entrust predict` output folder, or a folder of them (one per case)")
    p.add_argument("ground_truth", type=Path, metavar="GT",
                   help="a label file, a case folder with a label map, a phantom folder (with truth/ raters), "
                        "or a folder of cases named like the prediction folders")
    p.add_argument("--out", "-o", type=Path, metavar="DIR", help="where to write results (default PRED_DIR/evaluation)")
    add_overwrite_argument(p)
    p.set_defaults(run=run)


def format_value(value, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def run(args: argparse.Namespace) -> int:
    out = args.out or args.predictions / "evaluation"
    check_writable(list(output_files(out).values()), args.overwrite)
    bar = progress_bar("evaluating")
    try:
        result = evaluate(args.predictions, args.ground_truth, progress=bar)
    finally:
        bar.close()
    files = write_evaluation(result, out, overwrite=args.overwrite)
    print("| case | " + " | ".join(h for _, h, _ in SUMMARY_COLUMNS) + " |")
    print("|---" * (len(SUMMARY_COLUMNS) + 1) + "|")
    rows = [*result["per_case"], {"case": f"mean of {result['aggregate']['cases']}", **result["aggregate"]["mean"]}]
    for row in rows:
        print(f"| {row['case']} | " + " | ".join(format_value(row.get(k), f) for k, _, f in SUMMARY_COLUMNS) + " |")
    ranking = result["aggregate"]["case_score_vs_error_spearman"]
    if math.isfinite(ranking):
        print(f"case score vs 1 - Dice WT over {result['aggregate']['cases']} cases: Spearman {ranking:.2f}")
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
