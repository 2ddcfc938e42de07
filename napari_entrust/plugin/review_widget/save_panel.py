"""Save the corrected mask with its provenance; autosave every edit, and offer it back after a crash.

The mask is written on the source file's grid with a JSON sidecar (input hashes, model, parameters,
every edit); Save suggests the case's folder (or the folder saved to last) and a name from the
case. After every edit the corrections are autosaved (atomically) to a recovery file in the user
cache folder; opening the same case again offers to restore them. Closing the window with
corrections not saved asks first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_info
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QFileDialog, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from ...outputs.catalog import BY_KEY
from ...outputs.provenance import now
from ...review import recovery
from ...review.edits import Decision, Edit, ReviewState
from ..layer_updates import set_layer
from ..qt_parts import guarded, row
from ..writer import layer_meta, save_corrected_mask
from .kept_prediction import keep_prediction, kept_layers
from .session import ReviewSession

AUTOSAVE_DELAY_MS = 300
CORRECTED_SUFFIX = "_entrust_corrected.nii.gz"


def suggested_save_path(metadata: dict, last_folder: Path | None) -> Path:
    """Where Save proposes to write: the folder saved to last, else the case's folder (where its
    input files are; for a DICOM study, the folder holding it), else the home folder; named after the case."""
    case = re.sub(r"[^\w.-]+", "_", str(metadata.get("entrust_case") or "case")).strip("._") or "case"
    if last_folder is None:
        study = Path(str(metadata.get("entrust_dicom_study") or ""))
        files = [Path(str(p)) for p in (metadata.get("entrust_sources") or {}).values()]
        files = [f for f in files if f.is_file()]
        if metadata.get("entrust_dicom_study") and study.is_dir():  # beside the study: in it, it would be read
            last_folder = study.parent  # as part of the study next time
        else:
            last_folder = files[0].parent if files else Path.home()
    return last_folder / f"{case}{CORRECTED_SUFFIX}"


def ask_about_unsaved(parent: QWidget, case: str) -> str:
    """Ask what to do with corrections not saved: ``save``, ``discard`` or ``cancel``."""
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(
        parent,
        "Unsaved corrections",
        f"The corrections of {case} are not saved. Save them before closing?\n"
        "(Discard keeps an autosave that is offered back when the case is opened again.)",
        buttons.Save | buttons.Discard | buttons.Cancel,
        buttons.Save,
    )
    return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")


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
        self.last_folder: Path | None = None  #: the folder saved to last (Save proposes it again)
        self._saved_edits: list = []  # the edit log as last saved (or restored): later edits are unsaved
        self._watched_window: int | None = None
        self._kept_summary = None  # the summary of the prediction whose layers were kept for a restore
        self.keeping = None  #: the thread writing them (a restore in the same session may wait for it)
        self.save_button = QPushButton("Save corrected mask…")
        self.save_button.setToolTip(
            "write the mask on the scan's grid (NIfTI, or DICOM-SEG for a DICOM study) with a JSON record of every edit"
        )
        self.restore_label = QLabel("")
        self.restore_label.setWordWrap(True)
        self.restore_button, self.discard_button = QPushButton("Restore"), QPushButton("Discard")
        self.restore_button.setToolTip("bring back the corrections and the prediction's layers")
        self.discard_button.setToolTip("delete the autosaved corrections of this case")
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
    def suggested_path(self) -> Path:
        """What the Save dialog proposes (see :func:`suggested_save_path`)."""
        mask = self.session.output_layer("mask")
        return suggested_save_path(mask.metadata if mask is not None else {}, self.last_folder)

    def _save_clicked(self, *_args) -> bool:
        """The Save dialog; True if the mask was saved."""
        mask = self.session.output_layer("mask")
        formats = "NIfTI (*.nii.gz *.nii)"
        if mask is not None and mask.metadata.get("entrust_dicom_series"):
            formats += ";;DICOM Segmentation, referencing the study (*.seg.dcm)"
        path, chosen = QFileDialog.getSaveFileName(self, "Save corrected mask", str(self.suggested_path()), formats)
        if path and chosen.startswith("DICOM") and not path.lower().endswith(".dcm"):
            path = re.sub(r"\.nii(\.gz)?$", "", path, flags=re.IGNORECASE) + ".seg.dcm"
        # the dialog has asked before replacing a file
        return bool(path) and self.save(path, overwrite=True) is not None

    def unsaved(self) -> bool:
        """Whether the mask holds corrections made since the last save (undone ones do not count)."""
        mask = self.session.output_layer("mask")
        if mask is None or "entrust_review" not in mask.metadata:
            return False
        return self.session.state().edits != self._saved_edits

    # -- closing the window --------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Once docked, watch the main window's close (a dock widget has no close of its own)."""
        super().showEvent(event)
        window = self.window()
        if window is not self and id(window) != self._watched_window:
            window.installEventFilter(self)
            self._watched_window = id(window)  # not the window itself: the panel must not keep it alive

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Close and watched is self.window() and not self.close_allowed():
            event.ignore()
            return True
        return super().eventFilter(watched, event)

    def close_allowed(self) -> bool:
        """Before the window closes: with unsaved corrections, ask to save, discard or stay."""
        if not self.unsaved():
            return True
        case = self.session.output_layer("mask").metadata.get("entrust_case") or "this case"
        answer = ask_about_unsaved(self, case)
        if answer == "save":
            return self._save_clicked()
        if answer == "discard":
            self.autosave()  # offered back when the case is opened again
        return answer == "discard"

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
        self.last_folder, self._saved_edits = files[0].parent, list(state.edits)
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
        summary = mask.metadata.get("entrust_summary")
        try:
            if summary is not None and summary is not self._kept_summary:  # once per prediction
                self._kept_summary = summary
                self.keeping = keep_prediction(key, self.session.viewer, mask)
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
        key, found, source = self._pending
        rec = recovery.load_recovery(found)
        layers = kept_layers(key) if self.session.output_layer("trustmap") is None else []
        for data, kwargs, kind in layers:  # the prediction's layers, so that the review goes on
            set_layer(self.session.viewer, data, kwargs, kind)
        mask = self.session.output_layer("mask")
        if mask is not None and mask.data.shape == rec.labels.shape:
            changed = np.nonzero(np.asarray(mask.data) != rec.labels)
            self.session.set_labels(changed, rec.labels[changed])
        else:
            # the run's metadata (model, inputs, sampling) when its layers were kept, else the case's
            meta = layers[0][1]["metadata"] if layers else source.metadata
            transient = ("entrust_modality", "entrust_role")
            meta = {k: v for k, v in meta.items() if k.startswith("entrust_") and k not in transient}
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
            [Decision(Edit(**e)) for e in rec.record.get("edits", [])],
        )
        state.record(Edit("restore", int((state.predicted != rec.labels).sum())))
        self.session.adopt_mask(mask, state)
        self._show_restore(None)
        also = " with the prediction's layers" if layers else ""
        self.set_status(f"restored the corrections autosaved at {rec.record.get('saved_at')}{also}")

    def discard_recovery(self, *_args) -> None:
        """Delete the autosaved corrections that were offered."""
        if self._pending is None:
            return
        recovery.discard(self._pending[0])
        self._pending = None
        self._show_restore(None)
        self.set_status("autosaved corrections discarded")
