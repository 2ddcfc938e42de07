"""The "EnTrust" dock widget: pick modality layers, set K / steps / ε / seed / device / model, Run, Cancel.

A thin layer over the engine: the case comes from the layers (:mod:`..layer_input`), the run goes
through :class:`..worker.PredictionRunner`, and results become layers updated in place by name.
The worklist part (:mod:`.worklist_panel`) opens saved predictions as the same layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ...evaluation.case_reference import describe_score, load_reference
from ...inference.device import available_devices
from ...inference.validity import describe as describe_validity
from ...io.labels import LABEL_ABBREVIATIONS, LABEL_COLOURS, LABEL_NAMES, REGION_NAMES
from ...io.modalities import DISPLAY_NAMES, MODALITIES
from ...model.checkpoint import bundled_model_path
from ...model.config import SamplingConfig
from ...outputs.catalog import BY_KEY
from ...review.edits import Edit, ReviewState
from ..layer_input import case_from_layers, layer_kind, layer_modality
from ..layer_updates import results_in_front, show_layers
from ..progress_line import ProgressLine
from ..qt_parts import FilePicker, guarded, row
from ..view_panel import ViewPanel
from ..worker import PredictionRunner, result_layers, run_context
from .worklist_panel import WorklistPanel

if TYPE_CHECKING:
    import napari

NONE = "(none)"
BANNER_STYLE = "background-color: #8a3b00; color: white; padding: 4px; border-radius: 3px;"


def summary_text(summary: dict) -> str:
    """Case score and region volumes (mL, with the spread across hypotheses), as the widget shows them."""
    sha = summary.get("model", {}).get("sha256", "")
    lines = [
        *describe_score(summary["case_score"]["score"], sha, load_reference()),
        f"whole-tumour volume varies by {summary['case_score']['wt_volume_cv']:.1%} across the hypotheses",
    ]
    for region, v in summary["volumes_ml"].items():
        lines.append(
            f"{region} ({REGION_NAMES.get(region, region)}): {v['mask']:.1f} mL   "
            f"hypotheses {v['mean']:.1f} ± {v['std']:.1f} "
            f"[{v['min']:.1f}–{v['max']:.1f}]"
        )
    lines.append(f"{summary['timings_s']['total_s']:.1f} s on {summary['device']}")
    return "\n".join(lines)


def label_legend() -> QLabel:
    """The mask's colours and what each label is (BraTS names)."""
    items = [
        f'<span style="color:{LABEL_COLOURS[v]}">&#9632;</span> {LABEL_ABBREVIATIONS[v]} {LABEL_NAMES[v]}'
        for v in LABEL_COLOURS
    ]
    legend = QLabel("mask: " + " &nbsp; ".join(items))
    legend.setToolTip(
        "BraTS labels: NCR necrotic / non-enhancing tumour core, ED peritumoural oedema, ET enhancing "
        "tumour. WT (whole tumour) = all three, TC (tumour core) = NCR + ET. The TrustMap shows calibrated "
        "uncertainty: clear where the model is sure, violet to magenta to white where it is not."
    )
    return legend


def _spin(minimum: int, maximum: int, value: int, tooltip: str = "") -> QSpinBox:
    box = QSpinBox(minimum=minimum, maximum=maximum, value=value)
    box.setToolTip(tooltip)
    return box


def corrections_of(viewer, inputs: dict, case, to_case) -> tuple[ReviewState, np.ndarray] | None:
    """The review state and mask of an earlier run (or a restore) on these inputs, if the user has
    corrected it: a new run holds those voxels fixed instead of overwriting them."""
    name = BY_KEY["mask"].layer_name()
    if name not in viewer.layers:
        return None
    mask = viewer.layers[name]
    meta, state = mask.metadata, mask.metadata.get("entrust_review")
    same = meta.get("entrust_inputs") == inputs or (case.sources and meta.get("entrust_sources") == dict(case.sources))
    current = np.asarray(mask.data)
    if state is None or not same or to_case(current).shape != tuple(case.shape):
        return None
    return (state, current.copy()) if state.fixed(current).any() else None


class EntrustWidget(QWidget):
    """Run EnTrust on the modality layers of the viewer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self._viewer = viewer
        self._pickers = {mod: QComboBox() for mod in MODALITIES}
        for mod, picker in self._pickers.items():
            picker.setToolTip(f"the image layer holding the {DISPLAY_NAMES[mod]} scan")
        self._samples = _spin(
            1,
            64,
            8,
            "how many plausible masks (hypotheses) to draw: more gives a steadier TrustMap; "
            "the time of sampling grows with K × steps",
        )
        self._steps = _spin(1, 200, 10, "denoising steps per hypothesis: more is slower, rarely better beyond 10")
        self._probe = QDoubleSpinBox(minimum=0.0, maximum=0.95, singleStep=0.05, value=0.2)
        self._probe.setToolTip(
            "how hard the model is nudged where the modalities disagree, to see whether the mask "
            "changes there (the 'sensitivity to conflict' layer); 0 turns it off"
        )
        self._seed = _spin(0, 2**31 - 1, 0, "same seed, same hypotheses: a run can be repeated exactly")
        self._device = QComboBox()
        self._device.addItems(available_devices())
        self._device.setToolTip("where the model runs: auto takes a GPU when there is one")
        self._model = FilePicker(
            "Model file", "PyTorch checkpoint (*.pt)", bundled_model_path(), tooltip="the model; bundled by default"
        )
        self._run_button = QPushButton("Run")
        self._run_button.setToolTip("segment the case and show its uncertainty; runs in the background")
        self._cancel_button = QPushButton("Cancel", enabled=False)
        self._cancel_button.setToolTip("stop within one denoising step; the viewer stays as it was")
        self._estimate = QLabel("")  # the time the chosen K and steps will take, from the last run
        self._last_timings: tuple[dict, int] | None = None
        self._status, self._summary = QLabel(""), QLabel("")
        self._validity_banner = QLabel("")  # shown when the input is unlike training data
        self._validity_banner.setStyleSheet(BANNER_STYLE)
        # only the banner wraps: a wrapping label re-lays the dock out whenever its line count changes
        # (up to 80 ms under Xvfb), and the status changes with every progress message
        self._validity_banner.setWordWrap(True)
        self._validity_banner.setVisible(False)
        self.progress = ProgressLine()
        self._runner = PredictionRunner(
            on_state=self._set_running,
            on_status=self.set_status,
            on_progress=self.progress.show_progress,
            viewer=viewer,
        )
        self.worklist = WorklistPanel(viewer, self.show_result)
        self.view = ViewPanel(viewer)
        self._build_layout()
        self._show_estimate()
        self._run_button.clicked.connect(self.run)
        for box in (self._samples, self._steps):
            box.valueChanged.connect(self._show_estimate)
        self._cancel_button.clicked.connect(self._runner.cancel)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._layers_changed)
        self._layers_changed()

    def _build_layout(self) -> None:
        form = QFormLayout()
        for mod, picker in self._pickers.items():
            form.addRow(DISPLAY_NAMES[mod], picker)
        for label, widget in (
            ("samples K", self._samples),
            ("DDIM steps", self._steps),
            ("probe strength ε", self._probe),
            ("seed", self._seed),
            ("device", self._device),
            ("model", self._model),
        ):
            form.addRow(label, widget)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addLayout(form)
        layout.addWidget(self._estimate)
        layout.addLayout(row(self._run_button, self._cancel_button))
        layout.addWidget(self.progress)
        self.legend = label_legend()
        for widget in (self._status, self.legend, self._validity_banner, self._summary, self.worklist):
            layout.addWidget(widget)
        layout.addStretch()

    # -- modality layers -------------------------------------------------------------------------
    def _image_layer_names(self) -> list[str]:
        return [
            layer.name
            for layer in self._viewer.layers
            if layer_kind(layer) == "image" and layer.metadata.get("entrust_role") is None and layer.ndim == 3
        ]

    def _layers_changed(self, _event=None) -> None:
        """Refresh the layer choices; a modality with no layer chosen gets the layer that holds it."""
        names = self._image_layer_names()
        for mod, picker in self._pickers.items():
            current = picker.currentText()
            if current not in names:
                current = next(
                    (
                        layer.name
                        for layer in self._viewer.layers
                        if layer.name in names and layer_modality(layer) == mod
                    ),
                    NONE,
                )
            picker.blockSignals(True)
            picker.clear()
            picker.addItems([NONE, *names])
            picker.setCurrentText(current)
            picker.blockSignals(False)

    def chosen_layers(self) -> dict:
        """The layer chosen for each modality (modalities without one are left out)."""
        return {
            mod: self._viewer.layers[p.currentText()]
            for mod, p in self._pickers.items()
            if p.currentText() not in ("", NONE) and p.currentText() in self._viewer.layers
        }

    # -- running ---------------------------------------------------------------------------------
    def sampling(self) -> SamplingConfig:
        """The sampling parameters as set in the widget."""
        steps = int(self._steps.value())
        return SamplingConfig(
            samples=int(self._samples.value()),
            steps=steps,
            probe_strength=float(self._probe.value()),
            probe_steps=min(2, steps - 1),
            seed=int(self._seed.value()),
        )

    @guarded
    def run(self, *_args) -> None:
        """Start a run (errors in the inputs are shown as notifications; nothing else changes)."""
        layers = self.chosen_layers()
        missing = [DISPLAY_NAMES[m] for m in MODALITIES if m not in layers]
        if missing:
            raise ValueError(f"choose a layer for {', '.join(missing)} (the model needs all four modalities)")
        case, to_layer, to_case = case_from_layers(layers)
        sampling = self.sampling()
        sampling.validate()
        context = run_context(layers, to_layer)
        device = self._device.currentText()
        kept = corrections_of(self._viewer, context["inputs"], case, to_case)
        fixed = {}
        if kept is not None:  # the user's corrections on these inputs are held fixed, not run over
            state, current = kept
            fixed = {"fixed": to_case(state.fixed(current)), "fixed_labels": to_case(current)}
        self._runner.start(
            case,
            self._model.path,
            device,
            sampling,
            prepare=lambda pred, bundle: (pred.summary, result_layers(pred, bundle, case, sampling, device, context)),
            on_result=lambda result: self.show_result(result, kept),
            **fixed,
        )

    def show_result(self, result: tuple[dict, list], kept: tuple | None = None) -> None:
        """Show a prediction's layers (a run's, or a worklist case's saved one) and its summary;
        ``kept``: the review state and mask whose corrections the run held fixed."""
        summary, tuples = result

        def finish() -> None:
            mask = self._viewer.layers[BY_KEY["mask"].layer_name()]
            note = ""
            if kept is None:
                mask.metadata["entrust_review"] = ReviewState.start(mask.data)
            else:
                state, current = kept
                count = int(state.fixed(current).sum())
                state.rebase(mask.data)
                state.record(Edit("run", count))
                mask.metadata["entrust_review"] = state
                note = f"; your {count} corrected voxels were held fixed"
            self._summary.setText(summary_text(summary))
            self._show_validity(summary["validity"])
            parameters = summary.get("parameters", {})
            if "timings_s" in summary and parameters.get("samples"):
                self._last_timings = (summary["timings_s"], parameters["samples"] * parameters.get("steps", 1))
                self._show_estimate()
            self.set_status(f"done: TrustMap and mask shown, on top of the layer list{note}")

        in_front = [BY_KEY[k].layer_name() for k in ("trustmap", "mask")]
        show_layers(self._viewer, tuples, finish, arrange=lambda: results_in_front(self._viewer, in_front, in_front[1]))

    def _show_estimate(self, *_args) -> None:
        """The expected time of a run with the chosen K and steps: the last run's, its sampling
        scaled by K × steps (the rest does not depend on them)."""
        if self._last_timings is None:
            self._estimate.setText("expected time: shown after the first run on this machine")
            return
        timings, work = self._last_timings
        sampling = timings.get("sample_s", 0.0) * self._samples.value() * self._steps.value() / max(work, 1)
        seconds = timings.get("total_s", 0.0) - timings.get("sample_s", 0.0) + sampling
        self._estimate.setText(f"expected time for this case: about {seconds:.0f} s")

    def _show_validity(self, report: dict) -> None:
        """Flagged inputs get a banner (and a notification) that stays until the next run."""
        self._validity_banner.setText(describe_validity(report))
        self._validity_banner.setVisible(report["flagged"])
        if report["flagged"]:
            show_warning(describe_validity(report))

    def _set_running(self, running: bool) -> None:
        self._run_button.setEnabled(not running)
        self._cancel_button.setEnabled(running)
        self.progress.set_running(running)

    def set_status(self, text: str) -> None:
        self._status.setText(text)
