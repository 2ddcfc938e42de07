"""``entrust explain CASE --out DIR``: per-modality attribution of an uncertain region, with its faithfulness.

Explain one region of a prediction: Grad-CAM, intervention (occlusion) and fused attribution maps
per modality, whole-pipeline modality effects, and deletion/insertion AUC, off-target leakage and
robustness of each map. Writes attribution_*.nii.gz (one volume per modality), target.nii.gz and
explanation.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import arguments


def add_parser(sub) -> None:
    """The command's options."""
    p = sub.add_parser("explain", **arguments.command_texts(__doc__))
    arguments.add_case_arguments(p)
    p.add_argument("--out", "-o", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--region",
        default="1",
        metavar="N|lesion",
        help="N-th most uncertain region (as in the review table; default 1) or 'lesion'",
    )
    p.add_argument(
        "--prediction",
        type=Path,
        metavar="DIR",
        help="an `entrust predict` output folder of this case (default: predict first)",
    )
    p.add_argument(
        "--no-pipeline",
        action="store_true",
        help="skip re-running the whole prediction once per modality (faster; no TrustMap/mask effects)",
    )
    arguments.add_sampling_arguments(p)
    arguments.add_overwrite_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    from ..explain.explanation import caveat, explain
    from ..explain.files import explanation_files, write_explanation
    from ..explain.targets import choose_target
    from ..inference.device import resolve_device
    from ..inference.engine import run_prediction
    from ..io.loader import load_case
    from ..io.output_folder import check_output_folder, top_names
    from ..model.checkpoint import load_checkpoint
    from ..outputs.prediction_folder import read_prediction
    from ..progress import rescaled, run_to_end

    sampling = arguments.sampling_config(args)
    source = arguments.case_source(args)
    arguments.check_not_an_input(args.out, source)
    check_output_folder(args.out, args.overwrite, top_names(args.out, explanation_files(args.out).values()))
    case = load_case(source, **arguments.load_kwargs(args))
    bundle = load_checkpoint(args.model, resolve_device(args.device))
    bar = arguments.progress_bar(f"explain {case.name}")
    try:
        if args.prediction:
            pred = read_prediction(args.prediction, case)
        else:
            pred = run_to_end(
                rescaled(run_prediction(case, bundle, sampling, memory_mb=args.memory_mb), 0.0, 0.2, "predicting: "),
                bar,
            )
        target, what = choose_target(pred, case.grid.voxel_volume_ml, args.region)
        result = run_to_end(
            rescaled(
                explain(
                    case,
                    bundle,
                    pred,
                    target,
                    sampling=sampling,
                    memory_mb=args.memory_mb,
                    pipeline_effects=not args.no_pipeline,
                    seed=args.seed,
                ),
                0.2,
                0.8,
            ),
            bar,
        )
    finally:
        bar.close()
    files = write_explanation(case, result, args.out, overwrite=args.overwrite)
    print(f"{case.name}: {what}; region channel {result.summary['region_channel']}")
    print(describe(result.summary))
    warning = caveat(result.summary)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"{len(files)} files in {args.out} ({result.summary['seconds']:.1f} s)", file=sys.stderr)
    return 0


def describe(summary: dict) -> str:
    """Per-modality bars and the faithfulness table, as text."""
    lines = [
        "modality   fused share  gradient  intervention"
        + ("  TrustMap change  mask change" if summary["effects"] else "")
    ]
    for mod in summary["modalities"]:
        bar = "#" * round(20 * summary["shares"]["fused"][mod])
        line = (
            f"{mod:<8} {summary['shares']['fused'][mod]:>6.0%} {bar:<20} {summary['shares']['gradient'][mod]:>5.0%}"
            f"  {summary['shares']['intervention'][mod]:>8.0%}"
        )
        if summary["effects"]:
            e = summary["effects"][mod]
            line += f"  {e['trustmap_change']:>+14.3f}  {e['mask_change']:>10.1%}"
        lines.append(line)
    lines.append("map           deletion AUC (lower better)  insertion AUC (higher)  leakage  robustness")
    for method, f in summary["faithfulness"].items():
        lines.append(
            f"{method:<13} {f['deletion_auc']:>12.3f} {f['insertion_auc']:>27.3f} {f['leakage']:>14.1%}"
            f" {f['robustness']:>10.2f}"
        )
    return "\n".join(lines)
