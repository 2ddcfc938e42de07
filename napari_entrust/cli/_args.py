"""Argument helpers shared by the ``entrust`` commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """CASE (folder or 4-D NIfTI) or ``--modality NAME=PATH`` for each modality; ``--labels``, ``--reference``."""
    parser.add_argument("case", nargs="?", metavar="CASE",
                        help="a BraTS 2021/2023 case folder or an MSD Task01 4-D NIfTI")
    parser.add_argument("--modality", "-m", action="append", default=[], metavar="NAME=PATH",
                        help="give each modality explicitly instead of CASE (t1, t1ce, t2, flair; BraTS 2023 "
                             "spellings t1n, t1c, t2w, t2f accepted); repeat for each")
    parser.add_argument("--labels", metavar="PATH", help="label map to use (default: the case's *_seg file, if any)")
    parser.add_argument("--reference", metavar="NAME", help="modality whose grid outputs are written on (default t1)")
    parser.add_argument("--label-convention", default="auto", choices=("auto", "brats2021", "brats2023", "msd"),
                        help="label values of the label file (default: from the layout and values)")


def case_source(args: argparse.Namespace):
    """The source for :func:`napari_entrust.io.load_case` from parsed arguments."""
    if args.modality and args.case:
        raise InputError(args.case, "give either CASE or --modality NAME=PATH options, not both")
    if args.modality:
        mapping: dict[str, str] = {}
        for item in args.modality:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise InputError(None, f"--modality expects NAME=PATH, got {item!r}")
            mapping[name] = path
        return mapping
    if not args.case:
        raise InputError(None, "no case given: pass a case folder / 4-D NIfTI, or --modality NAME=PATH for each modality")
    return Path(args.case)


def load_kwargs(args: argparse.Namespace) -> dict:
    return {"labels": args.labels, "reference": args.reference, "label_convention": args.label_convention}


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def progress_bar(description: str):
    """A ``progress(fraction, message)`` callback drawing a tqdm bar on stderr; call ``.close()`` after."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=description, file=sys.stderr, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}", disable=None)

    def update(fraction: float, message: str) -> None:
        bar.n = round(100 * min(max(fraction, 0.0), 1.0))
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    update.close = bar.close
    return update
