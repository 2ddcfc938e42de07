"""The ``entrust`` command line. One module per command; each has ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..errors import EntrustError
from . import benchmark, evaluate, explain, info, predict, sample, train

COMMANDS = (sample, info, predict, explain, train, evaluate, benchmark)


def build_parser() -> argparse.ArgumentParser:
    """The ``entrust`` parser with one sub-command per module of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="entrust",
        description="EnTrust: multimodal brain-tumour segmentation with calibrated, explained uncertainty.",
    )
    parser.add_argument("--version", action="version", version=f"napari-entrust {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def log_to_stderr() -> None:
    """The library's log lines (training losses, one line per case of a folder) on stderr, as they are."""
    logger = logging.getLogger("napari_entrust")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (a redirected or captured stderr too)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def main(argv: list[str] | None = None) -> int:
    """``entrust COMMAND ...``: returns the exit status (2 for a problem named in one line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_stderr()
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
