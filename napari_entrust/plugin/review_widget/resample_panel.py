"""Re-sample with my edits: SegDiff again, every edited or reviewed voxel held fixed at each step.

Nearby uncertain voxels settle consistently with the correction (inpainting with RePaint-style
harmonisation) and the TrustMap updates; the review state carries over to the new mask.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qtpy.QtWidgets import QPushButton, QWidget

from ...model.config import SamplingConfig
from ...review.edits import Edit
from ..layer_input import case_from_layers
from ..layer_updates import apply_gradually, show_layers
from ..qt_parts import guarded, row
from ..worker import result_layers, run_context
from .session import ReviewSession


class ResamplePanel(QWidget):
    """ "Re-sample with my edits" and Cancel (which also stops an explanation)."""

    def __init__(self, session: ReviewSession, find_regions: Callable[[], object]):
        super().__init__()
        self.session, self._find_regions = session, find_regions
        self.resample_button = QPushButton("Re-sample with my edits")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.resample_button.setToolTip(
            "draw the hypotheses again with every corrected or reviewed voxel held fixed, so the voxels "
            "around a correction settle with it; the TrustMap updates"
        )
        self.cancel_button.setToolTip("stop the re-sampling or explanation; nothing changes")
        layout = row(self.resample_button, self.cancel_button)
        layout.setContentsMargins(0, 0, 0, 0)
        self.setLayout(layout)
        self.resample_button.clicked.connect(self.resample)
        self.cancel_button.clicked.connect(session.runner.cancel)
        session.on_running.append(self._running)

    def set_status(self, text: str) -> None:
        self.session.set_status(text)

    def _running(self, running: bool) -> None:
        self.resample_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    @guarded
    def resample(self, *_args) -> None:
        """Re-run SegDiff holding every edited or reviewed voxel fixed; the other voxels re-settle."""
        s = self.session
        mask = s.mask()
        state = s.state()
        current = np.asarray(mask.data)
        fixed_layer = state.fixed(current)
        if not fixed_layer.any():
            raise ValueError("nothing to hold fixed yet: keep, adopt, erase or paint a region first")
        layers = s.input_layers(mask)
        case, to_layer, to_case = case_from_layers(layers)
        sampling = SamplingConfig(**mask.metadata.get("entrust_sampling", {}))
        device = mask.metadata.get("entrust_device", "auto")
        context = run_context(layers, to_layer)
        count = int(fixed_layer.sum())
        kept = state.in_effect()  # the decisions the new prediction is made with

        def show(tuples: list) -> None:
            def carry_review_on() -> None:
                new_mask = s.output_layer("mask")
                state.rebase(new_mask.data, kept)
                state.record(Edit("resample", count))
                s.adopt_mask(new_mask, state)

            def report() -> None:
                s.set_status(f"re-sampled with {count} voxels held fixed; TrustMap updated")
                s.edited()

            # one event-loop turn each: together they blocked the viewer for up to 0.37 s
            finish = [carry_review_on, self._find_regions, report]
            show_layers(s.viewer, tuples, lambda: apply_gradually(finish))

        s.runner.start(
            case,
            mask.metadata.get("entrust_model"),
            device,
            sampling,
            prepare=lambda pred, bundle: result_layers(pred, bundle, case, sampling, device, context),
            on_result=show,
            fixed=to_case(fixed_layer),
            fixed_labels=to_case(current),
        )
