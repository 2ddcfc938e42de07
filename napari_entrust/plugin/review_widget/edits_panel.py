"""Correcting a region: keep the mask, adopt a hypothesis there (◀ ▶ step through them), erase, or paint.

Every action is one step of napari's undo and is recorded, so re-sampling holds it fixed.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ...review.edits import Edit, adopt_values, bbox_of, erase_values
from ..qt_parts import guarded, row
from .session import ReviewSession


class EditsPanel(QWidget):
    """Keep, erase, paint; adopt hypothesis k inside the selected region."""

    def __init__(self, session: ReviewSession):
        super().__init__()
        self.session = session
        self.hypothesis = QSpinBox(minimum=1, maximum=1)
        self.keep_button = QPushButton("Keep mask")
        self.adopt_button = QPushButton("Adopt hypothesis")
        self.previous_button, self.next_button = QPushButton("◀"), QPushButton("▶")
        self.erase_button = QPushButton("Erase")
        self.paint_button = QPushButton("Paint")
        self.hypothesis.setToolTip("which of the K hypotheses to show inside the region")
        for button, tip in (
            (self.keep_button, "the mask is right in this region: mark it reviewed and hold it fixed (Shift-K)"),
            (self.adopt_button, "replace the mask by this hypothesis inside the region only (Shift-A)"),
            (self.previous_button, "adopt the previous hypothesis inside the region"),
            (self.next_button, "adopt the next hypothesis inside the region"),
            (self.erase_button, "remove the lesion labels inside the region"),
            (self.paint_button, "paint on the mask with napari's brush (label 1 NCR, 2 ED, 4 ET)"),
        ):
            button.setToolTip(tip)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row(self.keep_button, self.erase_button, self.paint_button))
        layout.addLayout(
            row(QLabel("hypothesis"), self.hypothesis, self.previous_button, self.next_button, self.adopt_button)
        )
        self.keep_button.clicked.connect(self.keep)
        self.adopt_button.clicked.connect(lambda: self.adopt(self.hypothesis.value() - 1))
        self.previous_button.clicked.connect(lambda: self.step_hypothesis(-1))
        self.next_button.clicked.connect(lambda: self.step_hypothesis(+1))
        self.erase_button.clicked.connect(self.erase)
        self.paint_button.clicked.connect(self.paint)
        session.on_regions.append(self.hypotheses_found)

    def set_status(self, text: str) -> None:
        self.session.set_status(text)

    def hypotheses_found(self) -> None:
        """After a new region search: as many hypotheses to step through as the run drew."""
        samples = self.session.output_layer("samples")
        self.hypothesis.setMaximum(samples.data.shape[0] if samples is not None else 1)

    @guarded
    def keep(self, *_args) -> None:
        """Accept the current mask in the region (it is held fixed when re-sampling)."""
        r = self.session.selected_region()
        idx = r.indices()
        self.session.apply(r, idx, self.session.mask().data[idx], Edit("keep", r.voxels, r.number, None, bbox_of(idx)))

    @guarded
    def adopt(self, k: int) -> None:
        """Replace the mask by hypothesis ``k`` (0-based) inside the selected region only."""
        r = self.session.selected_region()
        samples = self.session.output_layer("samples")
        if samples is None:
            raise ValueError("the samples layer is missing: run EnTrust again")
        if not 0 <= k < samples.data.shape[0]:
            raise ValueError(f"hypothesis {k + 1} does not exist (K = {samples.data.shape[0]})")
        idx, values = adopt_values(r, np.asarray(samples.data), k)
        self.session.apply(r, idx, values, Edit("adopt", r.voxels, r.number, k + 1, bbox_of(idx)))
        self.hypothesis.setValue(k + 1)

    def step_hypothesis(self, step: int) -> None:
        """Show the next/previous hypothesis inside the selected region (each step is one undo)."""
        self.adopt((self.hypothesis.value() - 1 + step) % max(self.hypothesis.maximum(), 1))

    @guarded
    def erase(self, *_args) -> None:
        """Remove the lesion labels inside the selected region."""
        r = self.session.selected_region()
        idx, values = erase_values(r)
        self.session.apply(r, idx, values, Edit("erase", r.voxels, r.number, None, bbox_of(idx)))

    @guarded
    def paint(self, *_args) -> None:
        """Hand over to napari's paint brush on the mask layer."""
        mask = self.session.mask()
        self.session.viewer.layers.selection.active = mask
        mask.mode = "paint"
        self.set_status(
            "paint on the mask layer with napari's brush (label 2 oedema, 1 core, 4 enhancing); Ctrl+Z undoes"
        )
