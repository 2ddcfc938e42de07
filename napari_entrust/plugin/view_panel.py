"""The view row of the EnTrust widget: axial / coronal / sagittal, radiological or neurological."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from .anatomical_view import CONVENTIONS, VIEWS, chosen_view, follow_case_layers, show_view


class ViewPanel(QWidget):
    """Two choices that turn the viewer; the viewer keeps them for every case opened later."""

    def __init__(self, viewer):
        super().__init__()
        self._viewer = viewer
        follow_case_layers(viewer)
        view, convention = chosen_view(viewer)
        self.view = QComboBox()
        self.view.addItems(list(VIEWS))
        self.view.setCurrentText(view)
        self.view.setToolTip("which slices the 2-D view shows; each stays upright")
        self.convention = QComboBox()
        self.convention.addItems(list(CONVENTIONS))
        self.convention.setCurrentText(convention)
        self.convention.setToolTip(
            "radiological: the patient's right on the screen's left (as scanners show it); "
            "neurological: the patient's right on the right"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("view"), self.view, self.convention):
            layout.addWidget(widget)
        self.view.currentTextChanged.connect(self.apply)
        self.convention.currentTextChanged.connect(self.apply)

    def apply(self, _text: str = "") -> None:
        """Show the chosen view now."""
        show_view(self._viewer, self.view.currentText(), self.convention.currentText())
