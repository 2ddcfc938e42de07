"""Save the corrected mask with its provenance; autosave every edit, and offer it back after a crash.

The mask is written on the source file's grid with a JSON sidecar (input hashes, model, parameters,
every edit). After every edit the corrections are autosaved (atomically) to a recovery file in
the user cache folder; opening the same case again offers to restore them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from ...outputs.catalog import BY_KEY
from ...outputs.provenance import now
from ...review import recovery
from ...review.edits import Edit, ReviewState
from ..layer_updates import set_layer
from ..qt_parts import guarded, row
from ..writer import layer_meta, save_corrected_mask
from .session import ReviewSession

AUTOSAVE_DELAY_MS = 300


def recovery_key(metadata: dict) -> str | None:
    """The recovery file's key of the case a layer belongs to (None for layers of no known case)."""
    sources = metadata.get("entrust_sources")
    return recovery.case_key(metadata.get("entrust_case", ""), sources) if sources else None


class SavePanel(QWidget):
    """The Restore / Discard offer of autosaved corrections; and :attr:`save_button`, placed by the widget."""

    def __init__(self, session: ReviewSession, threshold: Callable[[], float]):
        super().__init__()
        self.session, self._threshold = session, threshold
        self._offered: set[str] = set()
        self._pending: tuple | None = None  # (key, recovery file, source layer) offered for restore
        self.save_button = QPushButton("Save corrected mask…")
        self.restore_label = QLabel("")
        self.restore_label.setWordWrap(True)
        self.restore_button, self.discard_button = QPushButton("Restore"), QPushButton("Discard")
        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.restore_label)
        layout.addLayout(row(self.restore_button, self.discard_button))
        self.save_button.clicked.connect(self._save_clicked)
        self.restore_button.clicked.connect(self.restore)
        self.discard_button.clicked.connect(self.discard_recovery)
        session.on_edit.append(self._autosave_timer.start)
        session.viewer.layers.events.inserted.connect(lambda event: self.check_recovery(event.value))
        self._show_restore(None)
        for layer in list(session.viewer.layers):
            self.check_recovery(layer)

    def set_status(self, text: str) -> None:
        self.session.set_status(text)

    # -- save ----------------------------------------------------------------------------------------
    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save corrected mask", "corrected_mask.nii.gz", "NIfTI (*.nii.gz *.nii)"
        )
        if path:
            self.save(path, overwrite=True)  # the dialog has asked before replacing a file

    @guarded
    def save(self, path: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
        """Write the mask on the source grid plus its provenance sidecar; then drop the recovery file."""
        mask = self.session.mask()
        state = self.session.state()
        record = {
            "edits": [e.to_dict() for e in state.edits],
            "region_threshold": self._threshold(),
            "fixed_voxels": int(state.fixed(np.asarray(mask.data)).sum()),
        }
        files = save_corrected_mask(path, np.asarray(mask.data), layer_meta(mask), record, overwrite=overwrite)
        key = recovery_key(mask.metadata)
        if key:
            recovery.discard(key)
        self.set_status(f"saved {files[0]} and {files[1].name}")
        return files

    # -- autosave and recovery -----------------------------------------------------------------------
    def autosave(self) -> Path | None:
        """Write the corrections so far to the case's recovery file (atomic)."""
        try:
            mask = self.session.mask()
        except ValueError:
            return None
        key = recovery_key(mask.metadata)
        if key is None:
            return None
        state = self.session.state()
        record = {
            "case": mask.metadata.get("entrust_case"),
            "saved_at": now(),
            "edits": [e.to_dict() for e in state.edits],
        }
        try:
            return recovery.autosave(
                key, np.asarray(mask.data), record, predicted=state.predicted, decided=state.decided
            )
        except Exception as exc:  # noqa: BLE001 - autosave must never interrupt the user
            self.set_status(f"autosave failed: {exc}")
            return None

    def check_recovery(self, layer) -> None:
        """Offer autosaved corrections when a layer of a case with a recovery file appears."""
        key = recovery_key(getattr(layer, "metadata", {}))
        if key is None or key in self._offered or layer.metadata.get("entrust_role") is not None:
            return
        self._offered.add(key)
        found = recovery.find_recovery(key)
        if found is not None:
            self._pending = (key, found, layer)
            self._show_restore(found)
            show_info(
                f"Unsaved corrections of case {layer.metadata.get('entrust_case')} were found: "
                "Restore them in the Review uncertainty widget"
            )

    def _show_restore(self, found: Path | None) -> None:
        visible = found is not None
        if visible:
            rec = recovery.load_recovery(found)
            self.restore_label.setText(
                f"Unsaved corrections of {rec.record.get('case')} from "
                f"{rec.record.get('saved_at')} ({len(rec.record.get('edits', []))} edits)."
            )
        for w in (self.restore_label, self.restore_button, self.discard_button):
            w.setVisible(visible)

    @guarded
    def restore(self, *_args) -> None:
        """Bring back the autosaved corrections as the mask layer (undoable if a mask layer exists)."""
        if self._pending is None:
            raise ValueError("there are no autosaved corrections to restore")
        _key, found, source = self._pending
        rec = recovery.load_recovery(found)
        mask = self.session.output_layer("mask")
        if mask is not None and mask.data.shape == rec.labels.shape:
            changed = np.nonzero(np.asarray(mask.data) != rec.labels)
            self.session.set_labels(changed, rec.labels[changed])
        else:
            meta = {k: v for k, v in source.metadata.items() if k.startswith("entrust_") and k != "entrust_modality"}
            output = BY_KEY["mask"]
            mask = set_layer(
                self.session.viewer,
                rec.labels,
                {
                    "name": output.layer_name(),
                    **output.style,
                    "metadata": {**meta, "entrust_role": output.role()},
                    "scale": source.scale,
                    "translate": source.translate,
                    "affine": source.affine.affine_matrix,
                },
                "labels",
            )
        state = ReviewState(
            rec.predicted if rec.predicted is not None else rec.labels.copy(),
            rec.decided if rec.decided is not None else np.zeros(rec.labels.shape, bool),
            [Edit(**e) for e in rec.record.get("edits", [])],
        )
        state.edits.append(Edit("restore", int((state.predicted != rec.labels).sum())))
        self.session.adopt_mask(mask, state)
        self._show_restore(None)
        self.set_status(f"restored the corrections autosaved at {rec.record.get('saved_at')}")

    def discard_recovery(self, *_args) -> None:
        """Delete the autosaved corrections that were offered."""
        if self._pending is None:
            return
        recovery.discard(self._pending[0])
        self._pending = None
        self._show_restore(None)
        self.set_status("autosaved corrections discarded")
