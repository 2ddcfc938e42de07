"""Running the engine from a widget: a thread worker, progress, Cancel, errors as notifications.

Both widgets (run and review) start their work through :class:`PredictionRunner`; the work is the
engine's generator, so the GUI thread only receives progress messages and, at the end, applies the
result layers one per event-loop turn (:mod:`.layer_updates`; the viewer stays responsive throughout).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from .. import crash_report
from ..errors import Cancelled, EntrustError
from ..inference.device import resolve_device
from ..inference.engine import run_prediction
from ..inference.prediction import Prediction
from ..inference.run_cache import RunCache
from ..model.checkpoint import ModelBundle, load_checkpoint
from ..model.config import SamplingConfig
from ..progress import ShouldStop, Steps
from .first_use import compile_label_colours, freeze_while_layers_kept
from .layer_data import prediction_layers
from .layer_input import placement

if TYPE_CHECKING:
    import napari

    from ..io.case import Case

log = logging.getLogger(__name__)
#: the last run's encoding and hypotheses, shared by both widgets: "Re-sample with my edits" after a run
#: skips the encoders and redraws only the slices that hold fixed voxels
LAST_RUN = RunCache()


def describe_error(exc: BaseException, where: str = "") -> str:
    """A notification text a user can act on; an unexpected error's traceback goes to a log file
    that the text names (:mod:`..crash_report`), as on the command line."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # torch's CUDA/MPS OOM
        return (
            "EnTrust ran out of memory: lower the sample count K, close other programs, or choose the cpu "
            "device if the GPU is small"
        )
    if isinstance(exc, EntrustError):
        return f"EnTrust: {exc}"
    return f"EnTrust: {crash_report.failure_line(exc, crash_report.write_traceback(exc, where), where)}"


def _work(model_path, device: str, stop: threading.Event, work: Callable, stage: list[str]) -> Steps[object]:
    """The worker body: load the model, then run ``work(bundle, should_stop)``, a generator that yields
    progress and returns the result (built off the GUI thread). ``stage[0]`` is kept at the last
    progress message, so a failure names where it happened even before the GUI has seen it."""
    stage[0] = "loading the model"
    yield 0.0, stage[0]
    bundle = load_checkpoint(model_path or None, resolve_device(device))
    compile_label_colours()  # here, not when the mask layer is first shown in the GUI thread
    steps = work(bundle, stop.is_set)
    with closing(steps):  # as ``yield from`` would: a stopped run leaves the work's contexts here
        while True:
            try:
                fraction, stage[0] = next(steps)
            except StopIteration as done:
                return done.value
            yield fraction, stage[0]


class PredictionRunner:
    """One prediction at a time for a widget."""

    def __init__(
        self,
        *,
        on_state: Callable[[bool], None],
        on_status: Callable[[str], None],
        on_progress: Callable[[float, str], None] | None = None,
        viewer: napari.Viewer | None = None,
    ):
        self._on_state = on_state
        self._on_status = on_status
        self._on_progress = on_progress
        self._viewer = viewer
        self._stop = threading.Event()
        self._worker = None
        self._stage = [""]

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(
        self,
        case: Case,
        model_path,
        device: str,
        sampling: SamplingConfig,
        *,
        prepare: Callable[[Prediction, ModelBundle], object],
        on_result: Callable[[object], None],
        **engine_kwargs,
    ) -> None:
        """Predict in a thread; ``prepare(pred, bundle)`` runs there too; ``on_result`` gets its value in the
        GUI thread."""

        def work(bundle: ModelBundle, should_stop: ShouldStop):
            pred = yield from run_prediction(
                case, bundle, sampling, should_stop=should_stop, last_run=LAST_RUN, **engine_kwargs
            )
            return prepare(pred, bundle)

        self.start_work(f"EnTrust {case.name}", model_path, device, work, on_result)

    def start_work(
        self,
        title: str,
        model_path,
        device: str,
        work: Callable[[ModelBundle, ShouldStop], Steps[object]],
        on_result: Callable[[object], None],
    ) -> None:
        """Run ``work(bundle, should_stop)`` (a progress-yielding generator) in a thread, with the progress,
        Cancel and error handling of a prediction. Progress goes to the widget's own bar, not to napari's
        Activity bar: that one animates an indicator while it is open, and under software OpenGL the
        repaints took the run from 8.9 s to 18.8 s (re-sample with an edit, 2 mm sample)."""
        if self.running:
            show_info("EnTrust is already running; cancel it first")
            return
        self._stop = threading.Event()
        handlers = {
            "yielded": self._progress,
            "returned": on_result,
            "errored": self._failed,
            "finished": self._finished,
        }  # an "errored" handler also stops napari re-raising errors
        self._stage = [title]
        run = thread_worker(_work, start_thread=False, connect=handlers)
        worker = run(model_path, device, self._stop, work, self._stage)
        self._worker = worker
        self._on_state(True)
        self._on_status("starting")
        if self._viewer is not None:
            freeze_while_layers_kept(self._viewer)
        worker.start()

    def cancel(self) -> None:
        """Ask the run to stop: the engine checks before every chunk and denoising step."""
        if self.running:
            self._stop.set()
            self._on_status("cancelling")

    def _progress(self, update: tuple[float, str]) -> None:
        fraction, message = update
        self._on_status(f"{fraction:.0%} {message}")
        if self._on_progress is not None:
            self._on_progress(fraction, message)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self._on_status("cancelled; the viewer is unchanged")
            show_info("EnTrust run cancelled; nothing was changed")
            return
        log.error("EnTrust run failed", exc_info=exc)
        text = describe_error(exc, self._stage[0])
        self._on_status(text)
        show_error(text)

    def _finished(self) -> None:
        self._worker = None
        self._on_state(False)


def run_context(layers: dict, to_layer: Callable) -> dict:
    """What the result layers need from the source layers: placement, voxel order, shared metadata."""
    ref = next(iter(layers.values()))
    return {
        "place": placement(ref),
        "to_layer": to_layer,
        "inputs": {m: layer.name for m, layer in layers.items()},
        "metadata": {
            k: v
            for k, v in ref.metadata.items()
            if k.startswith("entrust_") and k not in ("entrust_modality", "entrust_role", "entrust_review")
        },
    }


def result_layers(
    pred: Prediction, bundle: ModelBundle, case: Case, sampling: SamplingConfig, device: str, context: dict
) -> list:
    """Every result layer tuple, with the source layers' geometry and the run's metadata (any thread)."""
    meta = {
        **context["metadata"],
        "entrust_inputs": context["inputs"],
        "entrust_model": str(bundle.path),
        "entrust_device": device,
        "entrust_sampling": dict(sampling.__dict__),
        "entrust_sources": dict(case.sources),
        "entrust_case": case.name,
    }
    return prediction_layers(pred, context["place"], meta, to_layer_order=context["to_layer"])
