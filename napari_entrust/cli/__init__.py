"""The ``entrust`` command line. One module per command; each has ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import EntrustError
from . import benchmark, evaluate, explain, info, predict, sample, train

COMMANDS = (sample, info, predict, explain, train, evaluate, benchmark)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entrust",
        description="EnTrust: multimodal brain-tumour segmentation with calibrated, explained uncertainty.",
    )
    parser.add_argument("--version", action="version", version=f"napari-entrust {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except EntrustError as exc:
        print(f"entrust {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"entrust {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
