"""The ``entrust`` command line. One module per command; each has ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings

from .. import __version__, crash_report
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so half-written outputs are removed as for Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """``entrust COMMAND ...``: returns the exit status (2 for a problem named in one line).

    No traceback reaches the user: an unexpected error becomes one line naming the case and stage,
    with the traceback in a log file (:mod:`..crash_report`). SIGTERM is handled as Ctrl-C is.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_stderr()
    crash_report.note(task=args.command)
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        with warnings.catch_warnings():  # restores the warning display when the command ends
            warnings.showwarning = _warning_line(args.command)
            return int(args.run(args) or 0)
    except EntrustError as exc:
        print(f"entrust {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"entrust {args.command}: terminated; no partial output was left", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"entrust {args.command}: interrupted; no partial output was left", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line and a log, never a traceback
        log = crash_report.write_traceback(exc)
        print(f"entrust {args.command}: error: {crash_report.failure_line(exc, log)}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _warning_line(command: str):
    """Warnings as ``entrust COMMAND: warning: message``, one line, no source file or code line."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        print(f"entrust {command}: warning: {text}", file=file or sys.stderr)

    return show


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
