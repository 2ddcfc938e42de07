"""Small Qt parts the dock widgets share: rows, a file picker, and actions that never raise."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget

from .worker import describe_error


def row(*widgets: QWidget) -> QHBoxLayout:
    """Widgets side by side."""
    layout = QHBoxLayout()
    for w in widgets:
        layout.addWidget(w)
    return layout


def guarded(action: Callable) -> Callable:
    """An action whose problems become a notification and the status line, never a traceback.

    For methods of objects with a ``set_status(text)`` method (the widgets and their panels).
    """

    @functools.wraps(action)
    def wrapped(self, *args, **kwargs):
        try:
            return action(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every problem is shown to the user
            text = describe_error(exc)
            self.set_status(text)
            show_error(text)
            return None

    return wrapped


class FilePicker(QWidget):
    """A path typed in or chosen with a file dialog (``…``)."""

    def __init__(self, caption: str, file_filter: str, value: str | Path = "", *, tooltip: str = ""):
        super().__init__()
        self._caption, self._filter = caption, file_filter
        self.edit = QLineEdit(str(value))
        self.edit.setToolTip(tooltip)
        browse = QPushButton("…")
        browse.setToolTip(f"choose the {caption.lower()}")
        browse.clicked.connect(self._browse)
        layout = row(self.edit, browse)
        layout.setContentsMargins(0, 0, 0, 0)
        self.setLayout(layout)

    @property
    def path(self) -> str:
        return self.edit.text().strip()

    @path.setter
    def path(self, value: str | Path) -> None:
        self.edit.setText(str(value))

    def _browse(self) -> None:
        start = str(Path(self.path).parent) if self.path else ""
        chosen, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._filter)
        if chosen:
            self.path = chosen
