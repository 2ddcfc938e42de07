"""The "EnTrust" dock widget: pick modality layers, set K / steps / ε / seed / device / model, Run, Cancel;
or open the next case of a worklist with its saved prediction.

A thin layer over the engine: the case comes from the layers (:mod:`._viewer_layers`), the run goes
through :class:`._widget_runner.PredictionRunner`, and results become layers updated in place by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton, SpinBox
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning

from ._widget_runner import PredictionRunner, describe_error, result_layers, run_context, show_layers
from ._viewer_layers import case_from_layers, layer_kind, layer_modality
from .checkpoint import bundled_model_path
from .config import SamplingConfig
from .device import available_devices
from .io import load_case
from .layers import case_layers, case_metadata, geometry_kwargs, prediction_layers
from .modalities import DISPLAY_NAMES, MODALITIES
from .outputs import read_prediction
from .review import ReviewState
from .validity import describe as describe_validity
from .worklist import next_case, read_worklist

if TYPE_CHECKING:
    import napari


NONE = "(none)"


def summary_text(summary: dict) -> str:
    """Case score and region volumes (mL, with the spread across hypotheses), as the widget shows them."""
    lines = [f"case uncertainty score {summary['case_score']['score']:.3f} "
             f"(WT volume CV {summary['case_score']['wt_volume_cv']:.1%})"]
    for region, v in summary["volumes_ml"].items():
        lines.append(f"{region}: {v['mask']:.1f} mL   hypotheses {v['mean']:.1f} ± {v['std']:.1f} "
                     f"[{v['min']:.1f}–{v['max']:.1f}]")
    lines.append(f"{summary['timings_s']['total_s']:.1f} s on {summary['device']}")
    return "\n".join(lines)


class EntrustWidget(Container):
    """Run EnTrust on the modality layers of the viewer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self._viewer = viewer
        self._pickers = {mod: ComboBox(label=DISPLAY_NAMES[mod], choices=self._image_layer_names)
                         for mod in MODALITIES}
        self._samples = SpinBox(label="samples K", value=8, min=1, max=64,
                                tooltip="how many plausible masks (hypotheses) to draw")
        self._steps = SpinBox(label="DDIM steps", value=10, min=1, max=200)
        self._probe = FloatSpinBox(label="probe strength ε", value=0.2, min=0.0, max=0.95, step=0.05,
                                   tooltip="F_cf is scaled by 1 ± ε on the last steps; 0 turns probing off")
        self._seed = SpinBox(label="seed", value=0, min=0, max=2 ** 31 - 1)
        self._device = ComboBox(label="device", choices=available_devices(), value="auto")
        self._model = FileEdit(label="model", mode="r", filter="*.pt", value=bundled_model_path())
        self._run_button = PushButton(text="Run")
        self._cancel_button = PushButton(text="Cancel", enabled=False)
        self._status = Label(value="")
        self._validity_banner = Label(value="", visible=False)  # shown when the input is unlike training data
        self._validity_banner.native.setStyleSheet(
            "background-color: #8a3b00; color: white; padding: 4px; border-radius: 3px;")
        self._validity_banner.native.setWordWrap(True)
        self._summary = Label(value="")
        self._worklist = FileEdit(label="worklist", mode="r", filter="*.csv",
                                  tooltip="worklist.csv written by `entrust predict FOLDER`: cases riskiest first")
        self._next_case_button = PushButton(text="Open next case")
        self._worklist_status = Label(value="")
        self._current_case: str | None = None
        self.extend([*self._pickers.values(), self._samples, self._steps, self._probe, self._seed, self._device,
                     self._model, Container(widgets=[self._run_button, self._cancel_button], layout="horizontal",
                                            labels=False), self._status, self._validity_banner, self._summary,
                     self._worklist, self._next_case_button, self._worklist_status])
        self._runner = PredictionRunner(on_state=self._set_running, on_status=self._set_status)
        self._run_button.changed.connect(self.run)
        self._cancel_button.changed.connect(self._runner.cancel)
        self._next_case_button.changed.connect(self.open_next_case)
        self._worklist.changed.connect(self._worklist_changed)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._layers_changed)
        self._layers_changed()

    # -- modality layers -------------------------------------------------------------------------
    def _image_layer_names(self, _widget=None) -> list[str]:
        return [NONE] + [layer.name for layer in self._viewer.layers if layer_kind(layer) == "image"
                         and layer.metadata.get("entrust_role") is None and layer.ndim == 3]

    def _layers_changed(self, _event=None) -> None:
        self.reset_choices()
        for mod, picker in self._pickers.items():
            if picker.value in (None, NONE):
                match = next((layer.name for layer in self._viewer.layers if layer_kind(layer) == "image"
                              and layer_modality(layer) == mod and layer.metadata.get("entrust_role") is None), None)
                if match is not None:
                    picker.value = match

    def chosen_layers(self) -> dict:
        return {mod: self._viewer.layers[p.value] for mod, p in self._pickers.items()
                if p.value not in (None, NONE) and p.value in self._viewer.layers}

    # -- running ---------------------------------------------------------------------------------
    def sampling(self) -> SamplingConfig:
        steps = int(self._steps.value)
        return SamplingConfig(samples=int(self._samples.value), steps=steps, probe_strength=float(self._probe.value),
                              probe_steps=min(2, steps - 1), seed=int(self._seed.value))

    def run(self) -> None:
        """Start a run (errors in the inputs are shown as notifications; nothing else changes)."""
        layers = self.chosen_layers()
        try:
            missing = [DISPLAY_NAMES[m] for m in MODALITIES if m not in layers]
            if missing:
                raise ValueError(f"choose a layer for {', '.join(missing)} (the model needs all four modalities)")
            case, to_layer, _ = case_from_layers(layers)
            sampling = self.sampling()
            sampling.validate()
        except Exception as exc:  # noqa: BLE001 - every input problem becomes a notification
            text = describe_error(exc)
            self._set_status(text)
            show_error(text)
            return
        context = run_context(layers, to_layer)
        device = self._device.value
        self._runner.start(case, self._model.value, device, sampling,
                           prepare=lambda pred, bundle: (pred.summary, result_layers(pred, bundle, case, sampling,
                                                                                     device, context)),
                           on_result=self._show)

    def _show(self, result: tuple[dict, list]) -> None:
        summary, tuples = result

        def finish() -> None:
            mask = self._viewer.layers["mask"]
            mask.metadata["entrust_review"] = ReviewState.start(mask.data)
            self._summary.value = summary_text(summary)
            self._show_validity(summary["validity"])
            self._set_status("done: results are in the layer list (TrustMap and mask shown)")

        show_layers(self._viewer, tuples, finish)

    # -- worklist -------------------------------------------------------------------------------------
    def _worklist_changed(self, _value=None) -> None:
        self._current_case = None
        self._worklist_status.value = ""

    def open_next_case(self) -> None:
        """Open the next case of the worklist with its saved prediction, as if it had just been run."""
        try:
            rows = read_worklist(Path(self._worklist.value))
            row = next_case(rows, self._current_case)
        except Exception as exc:  # noqa: BLE001 - a bad worklist becomes a notification
            show_error(describe_error(exc))
            return
        if row is None:
            show_info("EnTrust: that was the last case of the worklist")
            self._worklist_status.value = "worklist done"
            return
        position = [r["case"] for r in rows if r["status"] == "ok"].index(row["case"]) + 1
        total = sum(r["status"] == "ok" for r in rows)
        self._worklist_status.value = f"opening {row['case']} ({position} of {total})"
        self._next_case_button.enabled = False

        def done(result) -> None:
            self._current_case = row["case"]
            summary, tuples = result
            for layer in [layer for layer in self._viewer.layers
                          if layer.metadata.get("entrust_role") in ("highlight", "attribution", "ground truth")]:
                self._viewer.layers.remove(layer)  # the previous case's review layers
            self._show((summary, tuples))
            self._worklist_status.value = (f"{row['case']}: case {position} of {total} "
                                           f"(case score {float(row['case_score']):.3f})")

        def failed(exc: BaseException) -> None:
            self._worklist_status.value = describe_error(exc)
            show_error(describe_error(exc))

        worker = thread_worker(_saved_case_layers, start_thread=False,
                               connect={"returned": done, "errored": failed,
                                        "finished": lambda: setattr(self._next_case_button, "enabled", True)})(
            row["source"], row["output"])
        worker.start()

    def _show_validity(self, report: dict) -> None:
        """Flagged inputs get a banner (and a notification) that stays until the next run."""
        self._validity_banner.value = describe_validity(report)
        self._validity_banner.visible = report["flagged"]
        if report["flagged"]:
            show_warning(describe_validity(report))

    def _set_running(self, running: bool) -> None:
        self._run_button.enabled = not running
        self._cancel_button.enabled = running

    def _set_status(self, text: str) -> None:
        self._status.value = text


def _saved_case_layers(source: str, output: str) -> tuple[dict, list]:
    """A worklist case and its saved prediction as layer tuples (in a worker thread): the same layers a run
    makes, so the review widget works on it unchanged."""
    case = load_case(source)
    pred = read_prediction(output, case)
    params = pred.summary.get("parameters", {})
    sampling = {k: v for k, v in params.items() if k in SamplingConfig.__dataclass_fields__}
    meta = {**case_metadata(case), "entrust_inputs": {m: DISPLAY_NAMES[m] for m in case.modalities},
            "entrust_model": pred.summary.get("model", {}).get("path"), "entrust_device": "auto",
            "entrust_sampling": sampling, "entrust_prediction": output}
    return pred.summary, case_layers(case) + prediction_layers(pred, geometry_kwargs(case.affine), meta)
