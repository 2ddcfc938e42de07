"""``entrust predict CASE --out DIR``: segment a case: mask, K hypotheses, TrustMap and explanation maps.

Run EnTrust on a case and write NIfTI outputs on the reference input's grid plus summary.json.
Given a folder of cases instead, every case goes to DIR/<case>/ and DIR/worklist.csv lists them
riskiest first (see napari_entrust.review.worklist); under torchrun the cases are shared out over
the ranks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EntrustError
from . import arguments

if TYPE_CHECKING:
    from ..model.config import SamplingConfig


def add_parser(sub) -> None:
    """The command's options."""
    p = sub.add_parser("predict", **arguments.command_texts(__doc__))
    arguments.add_case_arguments(p)
    p.add_argument(
        "--out",
        "-o",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder (for a folder of cases: one sub-folder per case, plus worklist.csv)",
    )
    arguments.add_sampling_arguments(p)
    p.add_argument(
        "--label-values",
        choices=("brats2021", "brats2023"),
        default="brats2021",
        help="label values of the written masks (default brats2021: ET = 4)",
    )
    p.add_argument(
        "--format",
        choices=("nifti", "dicom-seg"),
        default="nifti",
        help="nifti (default); dicom-seg, for a DICOM study: also the mask and the TrustMap as DICOM"
        " Segmentations (mask.seg.dcm, trustmap.seg.dcm) referencing the reference series",
    )
    arguments.add_overwrite_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    from ..inference.device import resolve_device
    from ..inference.engine import run_prediction
    from ..inference.validity import describe as describe_validity
    from ..io.loader import load_case
    from ..io.modalities import MODALITIES
    from ..model.checkpoint import load_checkpoint
    from ..outputs.prediction_folder import check_prediction_folder, write_prediction
    from ..progress import run_to_end
    from ..review import worklist

    sampling = arguments.sampling_config(args)
    source = arguments.case_source(args)
    if isinstance(source, Path) and worklist.is_case_collection(source):
        if args.format != "nifti":
            raise EntrustError(f"--format {args.format} is for one DICOM study, not a folder of cases")
        return run_folder(args, source, sampling)
    arguments.check_not_an_input(args.out, source)
    check_prediction_folder(MODALITIES, args.out, args.overwrite)  # before loading: a bad --out costs no wait
    case = load_case(source, **arguments.load_kwargs(args))
    if args.format == "dicom-seg" and not case.dicom_reference:
        raise EntrustError(f"{case.name}: --format dicom-seg needs a case read from a DICOM study")
    device = resolve_device(args.device)
    bundle = load_checkpoint(args.model, device)
    bar = arguments.progress_bar(f"EnTrust {case.name}")
    try:
        pred = run_to_end(run_prediction(case, bundle, sampling, memory_mb=args.memory_mb), bar)
    finally:
        bar.close()
    files = write_prediction(
        case,
        pred,
        args.out,
        overwrite=args.overwrite,
        label_convention=args.label_values,
        dicom_seg=args.format == "dicom-seg",
    )
    s = pred.summary
    vol = s["volumes_ml"]
    print(
        f"{case.name}: case score {s['case_score']['score']:.3f}  "
        + "  ".join(f"{r} {v['mask']:.1f} mL (hypotheses {v['mean']:.1f} ± {v['std']:.1f})" for r, v in vol.items())
    )
    if s["dropped_without_core_ml"] > 0:
        print(f"  {s['dropped_without_core_ml']:.2f} mL left out of the mask: parts holding no tumour core")
    print(f"  {s['timings_s']['total_s']:.1f} s on {s['device']}; {len(files)} files in {args.out}")
    print(describe_validity(s["validity"]), file=sys.stderr if s["validity"]["flagged"] else sys.stdout)
    print(json.dumps(s["timings_s"]))
    return 0


def run_folder(args: argparse.Namespace, folder: Path, sampling: SamplingConfig) -> int:
    """Every case of ``folder`` (sharded over torchrun ranks), then the worklist on rank 0."""
    from .. import crash_report
    from ..inference.device import resolve_device
    from ..inference.distributed import distributed_context, finish, gather_lists
    from ..io.files import check_writable
    from ..model.checkpoint import load_checkpoint
    from ..outputs.prediction_folder import check_prediction_folder
    from ..progress import run_to_end
    from ..review import worklist

    if args.labels:
        raise EntrustError(
            f"--labels names one label file, but {folder} is a folder of cases; each case's own label file is used"
        )
    sources = worklist.find_cases(folder)
    names = [worklist.output_name(s) for s in sources]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise EntrustError(f"{folder}: several cases would write to the same output folder ({', '.join(clashes)})")
    arguments.check_not_an_input(args.out, folder, inside=True)
    ctx = distributed_context(resolve_device(args.device))
    bundle = load_checkpoint(args.model, ctx.device)
    list_path = args.out / worklist.WORKLIST_FILE
    check_writable([list_path], args.overwrite)
    for n in names:  # every rank checks every case, so all stop before any work
        check_prediction_folder(bundle.config.modalities, args.out / n, args.overwrite)
    rank_text = f" (rank {ctx.rank + 1} of {ctx.world})" if ctx.world > 1 else ""
    bar = arguments.progress_bar(f"EnTrust {len(sources)} cases{rank_text}")
    try:
        rows = run_to_end(
            worklist.predict_cases(
                sources,
                bundle,
                sampling,
                args.out,
                rank=ctx.rank,
                world=ctx.world,
                overwrite=args.overwrite,
                label_convention=args.label_values,
                memory_mb=args.memory_mb,
                load_kwargs=arguments.load_kwargs(args),
                on_unexpected=crash_report.write_traceback,
            ),
            bar,
        )
    finally:
        bar.close()
    rows = gather_lists(ctx, rows)
    failed = sum(r["status"] != "ok" for r in rows)
    if ctx.main:
        rows = worklist.sort_rows(rows)
        worklist.write_worklist(rows, list_path, overwrite=args.overwrite)
        print(f"{len(rows) - failed} of {len(rows)} cases done; worklist (riskiest first): {list_path}")
        for row in rows[:10]:
            print(f"  {row['priority']:>3}. {worklist.describe_row(row)}")
        if len(rows) > 10:
            print(f"  ... {len(rows) - 10} more in {list_path.name}")
        correlation = worklist.score_error_correlation(rows)
        if correlation:
            print(
                f"case score vs 1 - Dice over {correlation['cases']} labelled cases: Spearman "
                f"{correlation['spearman_WT']:.2f} (WT), {correlation['spearman_mean_dice']:.2f} (mean of WT/TC/ET)"
            )
    finish(ctx)
    return 1 if failed else 0
