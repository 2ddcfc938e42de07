"""``entrust sample OUT_DIR``: generate a phantom four-modality case with ground truth.

Generate a realistic phantom brain-tumour case (T1, T1ce, T2, FLAIR) from real MNI anatomy, with
its label map, conflict mask, visibility mask and raters. With --domain randomised, one of the
training cases' random scanners, protocols and lesion families instead of the standard protocol.
With --generator heldout, a case of the
independent generator no model trains on instead (fsaverage anatomy, 3 T sequences; BraTS 2023
files on a 240 x 240 x 155, 1 mm, LPS grid).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import EntrustError
from ..io.modalities import PHANTOM_FORMATS
from ..phantom.domain import DOMAINS
from .arguments import SEED_LIMIT, add_overwrite_argument, command_texts, int_at_least, progress_bar


def add_parser(sub) -> None:
    """The command's options."""
    p = sub.add_parser("sample", **command_texts(__doc__))
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="folder to write the case into")
    p.add_argument(
        "--seed",
        type=int_at_least(0, SEED_LIMIT),
        default=0,
        help="random seed in [0, 2^32) (default 0); same seed, same case",
    )
    p.add_argument(
        "--spacing", type=int_at_least(1), default=2, help="voxel size in whole mm: 1 native, 2 fast (default)"
    )
    p.add_argument(
        "--format",
        default="brats2021",
        choices=PHANTOM_FORMATS,
        help="file naming (default brats2021), or dicom: a study folder of four MR series (labels in truth/)",
    )
    p.add_argument("--raters", type=int_at_least(1), default=4, help="number of simulated raters (default 4)")
    p.add_argument(
        "--misregistration",
        choices=("auto", "yes", "no"),
        default="auto",
        help="shift T2 or FLAIR by 1-2 mm (default: the seed decides)",
    )
    p.add_argument(
        "--domain",
        choices=DOMAINS,
        default="standard",
        help="the phantom's standard protocol (default) or a randomised one, as the model trains on",
    )
    p.add_argument(
        "--generator",
        choices=("phantom", "heldout"),
        default="phantom",
        help="the training phantom (default) or the independent held-out generator",
    )
    add_overwrite_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    from ..phantom.phantom import generate_phantom
    from ..phantom.writing import write_phantom
    from ..progress import run_to_end

    _check_out_dir(args)  # before generating: a taken folder costs no wait
    if args.generator == "heldout":
        return _heldout(args)
    misreg = {"auto": None, "yes": True, "no": False}[args.misregistration]
    bar = progress_bar("generating")
    try:
        ph = run_to_end(generate_phantom(args.seed, args.spacing, args.raters, misreg, args.domain), bar)
        paths = run_to_end(write_phantom(ph, args.out_dir, args.format, overwrite=args.overwrite), bar)
    finally:
        bar.close()
    print(f"wrote phantom case {ph.name} ({args.spacing} mm, {args.format}) to {args.out_dir}")
    for key, path in paths.items():
        print(f"  {key:12s} {path}")
    for e in ph.events:
        print(f"  conflict: {e.kind:15s} {e.volume_ml:6.2f} mL  raters including it: {e.included_by}")
    return 0


def _check_out_dir(args: argparse.Namespace) -> None:
    from ..heldout.case import heldout_name, heldout_paths
    from ..heldout.events import KINDS
    from ..io.output_folder import check_output_folder, top_names
    from ..phantom.phantom import phantom_name
    from ..phantom.writing import phantom_paths

    if args.generator == "heldout":
        paths = heldout_paths(heldout_name(args.seed), args.out_dir, list(KINDS), args.raters)
    else:
        paths = phantom_paths(phantom_name(args.seed, args.domain), args.out_dir, args.format, args.raters)
    check_output_folder(args.out_dir, args.overwrite, top_names(args.out_dir, paths.values()))


def _heldout(args: argparse.Namespace) -> int:
    """A case of the independent generator (1 mm, BraTS 2023, LPS: the phantom's layout options do not apply)."""
    from ..heldout.case import generate_heldout_case, save_heldout_case
    from ..progress import run_to_end

    if (args.spacing, args.format, args.misregistration, args.domain) != (2, "brats2021", "auto", "standard"):
        raise EntrustError(
            "--generator heldout makes 1 mm BraTS 2023 cases: --spacing, --format, --misregistration"
            " and --domain are for the phantom"
        )
    bar = progress_bar("generating")
    try:
        case = run_to_end(generate_heldout_case(args.seed, args.raters), bar)
    finally:
        bar.close()
    paths = save_heldout_case(case, args.out_dir, overwrite=args.overwrite)
    print(f"wrote held-out case {case.name} (1 mm, brats2023, LPS; {case.family} tumour) to {args.out_dir}")
    for key, path in paths.items():
        print(f"  {key:22s} {path}")
    for event, who in zip(case.events, case.included_by):
        print(
            f"  conflict: {event.kind:15s} {event.modality:6s} {event.mask.sum() * case.grid.voxel_volume_ml:6.3f} mL  "
            f"raters including it: {who}"
        )
    return 0
