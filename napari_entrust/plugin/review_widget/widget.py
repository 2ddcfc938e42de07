"""The "Review uncertainty" dock widget: uncertain regions ranked, why, correct, re-sample, explain, save.

Regions come from :func:`napari_entrust.review.regions.find_uncertain_regions` on the TrustMap
layer (:mod:`.regions_panel`); every correction edits the ``mask`` layer as one napari undo step
(:mod:`.edits_panel`); :mod:`.resample_panel` re-runs SegDiff with the edits held fixed,
:mod:`.explain_panel` attributes a region to the modalities, :mod:`.save_panel` saves and
autosaves. The panels share one :class:`~.session.ReviewSession`.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..progress_line import ProgressLine
from .edits_panel import EditsPanel
from .explain_panel import ExplainPanel
from .regions_panel import RegionsPanel
from .resample_panel import ResamplePanel
from .save_panel import SavePanel
from .session import ReviewSession

if TYPE_CHECKING:
    import napari


#: viewer keys for the review loop (Shift, so they do not take napari's own layer keys)
SHORTCUTS = {"Shift-N": "next region", "Shift-K": "keep mask", "Shift-A": "adopt hypothesis"}


def bind_shortcuts(viewer: napari.viewer.Viewer, widget: ReviewWidget) -> list[str]:
    """Bind :data:`SHORTCUTS` on the viewer (keys napari already uses are left alone); the keys
    bound. The viewer holds the widget weakly, so closing it frees both."""
    ref = weakref.ref(widget)
    actions = {
        "next region": lambda w: w.regions.select_next(),
        "keep mask": lambda w: w.edits.keep(),
        "adopt hypothesis": lambda w: w.edits.adopt(w.edits.hypothesis.value() - 1),
    }
    bound = []
    for key, name in SHORTCUTS.items():

        def press(_viewer, action=actions[name]) -> None:
            w = ref()
            if w is not None:
                action(w)

        try:
            viewer.bind_key(key, press, overwrite=False)
        except ValueError:  # napari or another plugin has this key
            continue
        bound.append(key)
    return bound


class ReviewWidget(QWidget):
    """Find, explain and correct the high-uncertainty regions of the last EnTrust run."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.progress = ProgressLine()
        self.session = ReviewSession(viewer, self.status.setText, self.progress.show_progress)
        self.session.on_running.append(self.progress.set_running)
        self.regions = RegionsPanel(self.session)
        self.edits = EditsPanel(self.session)
        self.resampling = ResamplePanel(self.session, self.regions.find_regions)
        self.explaining = ExplainPanel(self.session)
        self.saving = SavePanel(self.session, self.regions.threshold.value)
        self.shortcuts = bind_shortcuts(viewer, self)
        layout = QVBoxLayout(self)
        for part in (
            self.saving,
            self.regions,
            self.edits,
            self.resampling,
            self.saving.save_button,
            self.explaining,
            self.progress,
            self.status,
        ):
            layout.addWidget(part)
