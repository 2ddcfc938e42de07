"""What an unexpected error becomes: one line for the user, the traceback in a log file.

An error nobody anticipated (a library's ValueError, a bug) must not dump a traceback on a
clinician, nor be hidden from whoever fixes it: the user reads which case and stage failed and
where the details are; the log holds the traceback and the command line. The log folder is
``$ENTRUST_LOG_DIR`` or ``<tmp>/napari-entrust-logs``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .errors import exception_reason

LOG_DIR_ENV = "ENTRUST_LOG_DIR"


@dataclass
class Activity:
    """What the command is doing now (the progress bar's title and last message)."""

    task: str = ""
    stage: str = ""

    def describe(self) -> str:
        return ", ".join(part for part in (self.task, self.stage) if part)


activity = Activity()


def note(task: str | None = None, stage: str | None = None) -> None:
    """Record what is running, so a failure can say where it happened."""
    if task is not None:
        activity.task, activity.stage = task, ""
    if stage is not None:
        activity.stage = stage


def log_folder() -> Path:
    return Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "napari-entrust-logs")


def write_traceback(exc: BaseException, where: str = "") -> Path | None:
    """The traceback of ``exc`` with the command line, in a new log file; None if it cannot be written."""
    folder = log_folder()
    path = folder / f"entrust-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{id(exc) % 10000:04d}.log"
    text = f"command: {' '.join(sys.argv)}\nwhere: {where or activity.describe() or '-'}\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:
        return None
    return path


def failure_line(exc: BaseException, log: Path | None, where: str = "") -> str:
    """``unexpected error while <where> (<Type>: <message>); details in <log>``."""
    where = where or activity.describe()
    text = f"unexpected error{f' while {where}' if where else ''} ({exception_reason(exc)})"
    return text + (f"; the traceback is in {log}" if log else "")
