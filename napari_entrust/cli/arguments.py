"""Argument helpers shared by the ``entrust`` commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import crash_report
from ..errors import EntrustError, InputError, OutputError
from ..progress import Progress

if TYPE_CHECKING:
    from ..io.case_files import Source
    from ..model.config import SamplingConfig


def command_texts(doc: str) -> dict[str, str]:
    r"""A command's ``help`` and ``description`` from its module docstring, so each is written once.

    The first line is ``\`\`entrust NAME ...\`\`: help.``; the paragraphs after it are the description.
    """
    first, _, rest = doc.strip().partition("\n\n")
    return {"help": first.split(": ", 1)[-1].rstrip("."), "description": " ".join(rest.replace("``", "").split())}


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """CASE (folder or 4-D NIfTI) or ``--modality NAME=PATH`` for each modality; ``--labels``, ``--reference``."""
    parser.add_argument(
        "case",
        nargs="?",
        metavar="CASE",
        help="a BraTS 2021/2023 case folder, an MSD Task01 4-D NIfTI, or a folder of DICOM series (a study)",
    )
    parser.add_argument(
        "--modality",
        "-m",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="give each modality explicitly instead of CASE (t1, t1ce, t2, flair; BraTS 2023 "
        "spellings t1n, t1c, t2w, t2f accepted); repeat for each",
    )
    parser.add_argument(
        "--series",
        action="append",
        default=[],
        metavar="NAME=SERIES",
        help="for a DICOM study: which series is a modality, by series number or words of its description"
        " (e.g. --series t1ce=POST); repeat for each; default: the ENTRUST_SERIES variable, then guessed"
        " from descriptions and sequence parameters",
    )
    parser.add_argument("--labels", metavar="PATH", help="label map to use (default: the case's *_seg file, if any)")
    parser.add_argument("--reference", metavar="NAME", help="modality whose grid outputs are written on (default t1)")
    parser.add_argument(
        "--label-convention",
        default="auto",
        choices=("auto", "brats2021", "brats2023", "msd"),
        help="label values of the label file (default: from the layout and values)",
    )


def case_source(args: argparse.Namespace) -> Source:
    """The source for :func:`napari_entrust.io.loader.load_case` from parsed arguments."""
    if args.modality and args.case:
        raise InputError(args.case, "give either CASE or --modality NAME=PATH options, not both")
    if args.modality:
        mapping: dict[str, str] = {}
        for item in args.modality:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise InputError(None, f"--modality expects NAME=PATH, got {item!r}")
            if name in mapping:
                raise InputError(path, f"--modality {name} is given twice (also {mapping[name]}); give each once")
            mapping[name] = path
        return mapping
    if not args.case:
        raise InputError(
            None, "no case given: pass a case folder / 4-D NIfTI, or --modality NAME=PATH for each modality"
        )
    return Path(args.case)


def check_not_an_input(out: Path, source: Source, *, inside: bool = False) -> None:
    """Refuse an output folder that is the input case folder (its outputs would be read back as the
    case's files), or, with ``inside``, any folder within the input folder (a folder of cases:
    the outputs would be found as cases next time)."""
    if not isinstance(source, Path) or not source.is_dir():
        return
    out_abs, src = out.resolve(), source.resolve()
    if out_abs == src or (inside and src in out_abs.parents):
        where = "is the input folder" if out_abs == src else f"is inside the input folder {source}"
        raise OutputError(out, f"{where}; write the outputs elsewhere")


def load_kwargs(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`~napari_entrust.io.loader.load_case` the case options give."""
    from ..io.dicom_modalities import parse_series_names

    try:
        series = parse_series_names(";".join(args.series)) if args.series else None
    except ValueError as exc:
        raise InputError(None, f"--series: {exc}") from None
    return {
        "labels": args.labels,
        "reference": args.reference,
        "label_convention": args.label_convention,
        "series": series,
    }


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """K, S, ε, η, seed, device, model and memory budget: how ``predict`` and ``explain`` run the model."""
    from ..inference.device import DEVICE_CHOICES

    p.add_argument("--samples", "-k", type=int_at_least(1), default=8, help="hypotheses K (default 8)")
    p.add_argument("--steps", "-s", type=int_at_least(1), default=10, help="DDIM steps S (default 10)")
    p.add_argument(
        "--probe-strength",
        type=_fraction,
        default=0.2,
        metavar="EPS",
        help="conflict probe strength ε in [0, 1): F_cf scaled by 1 ± ε (default 0.2)",
    )
    p.add_argument("--eta", type=float, default=1.0, help="DDIM stochasticity η in [0, 1] (default 1)")
    p.add_argument("--seed", type=int_at_least(0, SEED_LIMIT), default=0, help="random seed in [0, 2^32) (default 0)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="auto (cuda, mps, cpu) or one of them")
    p.add_argument("--model", type=Path, metavar="CKPT", help="checkpoint (default: the bundled model)")
    p.add_argument("--memory-mb", type=int_at_least(64), default=1024, help="working-memory budget (default 1024)")


def sampling_config(args: argparse.Namespace) -> SamplingConfig:
    """The :class:`SamplingConfig` of parsed :func:`add_sampling_arguments`, validated."""
    from ..model.config import SamplingConfig

    probe_steps = min(2, args.steps - 1) if args.steps > 1 else 0
    sampling = SamplingConfig(
        **chosen(args, "samples", "steps", "eta", "probe_strength", "seed"), probe_steps=probe_steps
    )
    try:
        sampling.validate()
    except ValueError as exc:
        raise EntrustError(str(exc)) from None
    return sampling


def chosen(args: argparse.Namespace, *names: str) -> dict:
    """The parsed values of the options ``names``, by name (to build a config from them)."""
    return {name: getattr(args, name) for name in names}


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``: without it, no existing output is ever replaced."""
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


SEED_LIMIT = 2**32  #: seeds are recorded as given, so they must not wrap in NumPy or torch


def int_at_least(minimum: int, below: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum`` (and smaller than ``below``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(f"must be < {below}, got {value}")
        return value

    return parse


def progress_bar(description: str) -> Progress:
    """A ``progress(fraction, message)`` callback drawing a tqdm bar on stderr; call ``.close()`` after.

    The commands drive the library's generators with it: ``run_to_end(work, bar)``.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=100,
        desc=description,
        file=sys.stderr,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
        disable=None,
    )

    crash_report.note(task=description)

    def update(fraction: float, message: str) -> None:
        crash_report.note(stage=message)
        bar.n = round(100 * min(max(fraction, 0.0), 1.0))
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    update.close = bar.close
    return update
