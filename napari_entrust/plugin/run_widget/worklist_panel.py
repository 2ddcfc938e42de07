"""The worklist part of the EnTrust widget: open the next case of ``worklist.csv`` with its saved prediction.

The case opens as the same layers a run makes, so the review widget works on it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ...io.loader import load_case
from ...io.modalities import DISPLAY_NAMES
from ...model.config import SamplingConfig
from ...outputs.prediction_folder import read_prediction
from ...review.worklist import next_case, read_worklist
from ..layer_data import case_layers, case_metadata, geometry_kwargs, prediction_layers
from ..qt_parts import FilePicker
from ..worker import describe_error

if TYPE_CHECKING:
    import napari

#: layers of the previous case's review that mean nothing for the next case
REVIEW_ROLES = ("highlight", "attribution", "ground truth")


def saved_case_layers(source: str, output: str) -> tuple[dict, list]:
    """A worklist case and its saved prediction as layer tuples (in a worker thread): the same layers a run
    makes, so the review widget works on it unchanged."""
    case = load_case(source)
    pred = read_prediction(output, case)
    params = pred.summary.get("parameters", {})
    sampling = {k: v for k, v in params.items() if k in SamplingConfig.__dataclass_fields__}
    meta = {
        **case_metadata(case),
        "entrust_inputs": {m: DISPLAY_NAMES[m] for m in case.modalities},
        "entrust_model": pred.summary.get("model", {}).get("path"),
        "entrust_device": "auto",
        "entrust_sampling": sampling,
        "entrust_prediction": output,
    }
    return pred.summary, case_layers(case) + prediction_layers(pred, geometry_kwargs(case.affine), meta)


class WorklistPanel(QWidget):
    """Choose a worklist and open its cases one after the other, riskiest first."""

    def __init__(self, viewer: napari.viewer.Viewer, show_result: Callable[[tuple[dict, list]], None]):
        super().__init__()
        self._viewer, self._show_result = viewer, show_result
        self.picker = FilePicker(
            "Worklist",
            "Worklist (*.csv)",
            tooltip="worklist.csv written by `entrust predict FOLDER`: cases riskiest first",
        )
        self.picker.edit.setPlaceholderText("worklist.csv (from entrust predict FOLDER)")
        self.next_button = QPushButton("Open next case")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.current_case: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("worklist"), self.picker, self.next_button, self.status):
            layout.addWidget(widget)
        self.picker.edit.textChanged.connect(self._worklist_changed)
        self.next_button.clicked.connect(self.open_next_case)

    def _worklist_changed(self, _text: str = "") -> None:
        self.current_case = None
        self.status.setText("")

    def open_next_case(self, *_args) -> None:
        """Open the next case of the worklist with its saved prediction, as if it had just been run."""
        if not self.picker.path:  # Path("") is the working folder: say what is missing instead
            show_error("EnTrust: choose a worklist.csv first (written by `entrust predict FOLDER`)")
            return
        try:
            rows = read_worklist(Path(self.picker.path))
            row = next_case(rows, self.current_case)
        except Exception as exc:  # noqa: BLE001 - a bad worklist becomes a notification
            show_error(describe_error(exc))
            return
        if row is None:
            show_info("EnTrust: that was the last case of the worklist")
            self.status.setText("worklist done")
            return
        ok = [r["case"] for r in rows if r["status"] == "ok"]
        position, total = ok.index(row["case"]) + 1, len(ok)
        self.status.setText(f"opening {row['case']} ({position} of {total})")
        self.next_button.setEnabled(False)

        def done(result) -> None:
            self.current_case = row["case"]
            for layer in [layer for layer in self._viewer.layers if layer.metadata.get("entrust_role") in REVIEW_ROLES]:
                self._viewer.layers.remove(layer)  # the previous case's review layers
            self._show_result(result)
            self.status.setText(
                f"{row['case']}: case {position} of {total} (case score {float(row['case_score']):.3f})"
            )

        def failed(exc: BaseException) -> None:
            self.status.setText(describe_error(exc))
            show_error(describe_error(exc))

        worker = thread_worker(
            saved_case_layers,
            start_thread=False,
            connect={"returned": done, "errored": failed, "finished": lambda: self.next_button.setEnabled(True)},
        )(row["source"], row["output"])
        worker.start()
