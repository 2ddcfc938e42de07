"""``entrust evaluate PRED_DIR GT``: score predictions against ground truth (per case and overall).

Compare `entrust predict` output folders with ground truth: Dice and HD95 per region, calibration
(ECE, Brier, NLL), uncertainty quality (error AUROC/AUPRC, UEO, QU-BraTS score), hypotheses vs
raters (GED, Hungarian-matched IoU) and conflict localisation. Writes cases.csv, evaluation.json
and two plots.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .arguments import add_overwrite_argument, command_texts, progress_bar


def add_parser(sub) -> None:
    """The command's options."""
    p = sub.add_parser("evaluate", **command_texts(__doc__))
    p.add_argument(
        "predictions",
        type=Path,
        metavar="PRED_DIR",
        help="an `entrust predict` output folder, or a folder of them (one per case)",
    )
    p.add_argument(
        "ground_truth",
        type=Path,
        metavar="GT",
        help="a label file, a case folder with a label map, a phantom folder (with truth/ raters), "
        "or a folder of cases named like the prediction folders",
    )
    p.add_argument("--out", "-o", type=Path, metavar="DIR", help="where to write results (default PRED_DIR/evaluation)")
    add_overwrite_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    from ..evaluation.evaluate import evaluation_files, run_evaluation, write_evaluation
    from ..evaluation.tables import METRIC_COLUMNS, markdown_table
    from ..io.output_folder import check_output_folder, top_names
    from ..outputs.prediction_folder import EVALUATION_FOLDER
    from ..progress import run_to_end

    out = args.out or args.predictions / EVALUATION_FOLDER
    check_output_folder(out, args.overwrite, top_names(out, evaluation_files(out).values()))
    bar = progress_bar("evaluating")
    try:
        result = run_to_end(run_evaluation(args.predictions, args.ground_truth), bar)
    finally:
        bar.close()
    for warning in result["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    files = write_evaluation(result, out, overwrite=args.overwrite)
    rows = [*result["per_case"], {"case": f"mean of {result['aggregate']['cases']}", **result["aggregate"]["mean"]}]
    print("\n".join(markdown_table("case", METRIC_COLUMNS, ((row["case"], row) for row in rows))))
    ranking = result["aggregate"]["case_score_vs_error_spearman"]
    if math.isfinite(ranking):
        print(f"case score vs 1 - Dice WT over {result['aggregate']['cases']} cases: Spearman {ranking:.2f}")
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
