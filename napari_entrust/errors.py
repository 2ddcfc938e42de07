"""Errors a user can act on: each names the file and says what is wrong with it."""

from __future__ import annotations

from os import PathLike
from pathlib import Path


class EntrustError(Exception):
    """Base class for every error napari-entrust raises on purpose."""


class InputError(EntrustError, ValueError):
    """Bad input data. Holds one or more ``(path, problem)`` pairs so all are reported at once."""

    def __init__(self, path: str | PathLike | None, problem: str, *, more: list[tuple[str, str]] | None = None):
        self.problems: list[tuple[str, str]] = [(str(path) if path is not None else "", problem)]
        self.problems += more or []
        super().__init__(self._text())

    @property
    def path(self) -> str:
        return self.problems[0][0]

    @property
    def problem(self) -> str:
        return self.problems[0][1]

    def _text(self) -> str:
        lines = [f"{p}: {msg}" if p else msg for p, msg in self.problems]
        return lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)


class OutputError(EntrustError, OSError):
    """An output cannot be written (exists already, unwritable folder, disk full)."""

    def __init__(self, path: str | PathLike, problem: str):
        self.path = str(Path(path))
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class Cancelled(EntrustError):  # noqa: N818 - not an error: the user asked for it
    """The user stopped a long run; nothing was written and nothing needs cleaning up."""

    def __init__(self, message: str = "cancelled by the user"):
        super().__init__(message)


def exception_reason(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``: what a library raised, in one line for the user."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
