"""Results as layers, updated in place by name, one per event-loop turn so the viewer never freezes."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QTimer

from .layer_input import layer_kind

# The pause between two steps. A zero-time timer is a posted event, run in the same pass as the
# repaint the last step set off, so two steps and a repaint can follow back to back; a real timer
# waits its turn with input and the other timers.
STEP_PAUSE_MS = 5

if TYPE_CHECKING:
    import napari


def set_layer(viewer: napari.Viewer, data: np.ndarray, kwargs: dict, kind: str):
    """Add a layer, or update the one with the same name and type in place (data, geometry, metadata)."""
    name = kwargs["name"]
    if name in viewer.layers and layer_kind(viewer.layers[name]) == kind:
        layer = viewer.layers[name]
        # every setter redraws the layer: set only what changed, so an update costs one refresh
        for key in ("scale", "translate"):
            if key in kwargs and not np.allclose(getattr(layer, key), kwargs[key]):
                setattr(layer, key, kwargs[key])
        if "affine" in kwargs and not np.allclose(layer.affine.affine_matrix, np.asarray(kwargs["affine"])):
            layer.affine = kwargs["affine"]
        layer.metadata = kwargs.get("metadata", {})
        if (
            kind == "image"
            and "contrast_limits" in kwargs
            and not np.allclose(layer.contrast_limits, kwargs["contrast_limits"])
        ):
            layer.contrast_limits_range = kwargs["contrast_limits"]
            layer.contrast_limits = kwargs["contrast_limits"]
        if not _same_data(layer.data, data):  # re-sampling leaves every feature map as it was
            layer.data = data
        return layer
    if name in viewer.layers:  # same name, other type: replace it
        viewer.layers.remove(name)
    adder = {"image": viewer.add_image, "labels": viewer.add_labels}[kind]
    return adder(data, **kwargs)


def _same_data(current, data: np.ndarray) -> bool:
    """Whether a layer already holds exactly ``data`` (setting it anyway redraws the layer)."""
    if current is data:
        return True
    if getattr(current, "shape", None) != np.shape(data) or getattr(current, "dtype", None) != data.dtype:
        return False
    return bool(np.array_equal(current, data))


def show_layers(
    viewer: napari.Viewer,
    tuples: list,
    done: Callable[[], None] | None = None,
    arrange: Callable[[], None] | None = None,
) -> None:
    """Add or update (by name) the result layers, one per event-loop turn (GUI thread); then
    ``arrange`` (e.g. reorder them), in its own turn; then ``done``.

    The layer list is repainted once at the end, not after each layer or move: with twenty layers
    its repaint (a thumbnail per row) is 30-80 ms, every turn, and would block the viewer that long.
    """
    layer_list = _layer_list_view(viewer)
    paused = layer_list is not None and layer_list.updatesEnabled()
    if paused:
        layer_list.setUpdatesEnabled(False)

    def resume() -> None:
        if paused:
            layer_list.setUpdatesEnabled(True)

    def step(t) -> None:
        with _not_selected_on_insert(viewer):
            set_layer(viewer, *t)

    # a new visible layer is inserted hidden and shown in a later turn: inserting it (controls,
    # visual) and drawing it the first time (slicing, shaders, texture) each take 70-150 ms under Xvfb
    shown = [t[1]["name"] for t in tuples if t[1].get("visible", True) and t[1]["name"] not in viewer.layers]
    hidden = [(data, {**kw, "visible": False} if kw["name"] in shown else kw, kind) for data, kw, kind in tuples]
    steps = [lambda t=t: step(t) for t in hidden] + [lambda n=n: _show(viewer, n) for n in shown]
    apply_gradually(steps + ([arrange] if arrange is not None else []), done, always=resume)


def _show(viewer: napari.Viewer, name: str) -> None:
    if name in viewer.layers:
        viewer.layers[name].visible = True


@contextmanager
def _not_selected_on_insert(viewer: napari.Viewer) -> Iterator[None]:
    """Insert layers without making each the selected one (the caller selects at the end): every
    selection change re-populates the layer controls and re-styles the layer buttons, 20-40 ms
    under Xvfb. ``_activate_on_insert`` is napari's own switch for this (no public API); where a
    napari lacks it, layers are inserted as usual."""
    layers = viewer.layers
    with _private_access():
        before = getattr(layers, "_activate_on_insert", None)
    if not isinstance(before, bool):
        yield
        return
    with _private_access():
        layers._activate_on_insert = False
    try:
        yield
    finally:
        with _private_access():
            layers._activate_on_insert = before


@contextmanager
def _private_access() -> Iterator[None]:
    """napari warns (FutureWarning) on each private attribute a plugin reaches through its viewer
    proxy; the two this module uses have fallbacks, so the warning would only alarm users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Private attribute access", category=FutureWarning)
        yield


def _layer_list_view(viewer: napari.Viewer):
    """napari's layer-list widget, or None where this napari has no such widget (no public API)."""
    with _private_access():
        qt_viewer = getattr(viewer.window, "_qt_viewer", None)
    view = getattr(qt_viewer, "layers", None)
    return view if hasattr(view, "setUpdatesEnabled") else None


def apply_gradually(
    steps: list[Callable[[], None]],
    done: Callable[[], None] | None = None,
    always: Callable[[], None] | None = None,
) -> None:
    """Run GUI updates one per event-loop turn, so adding many layers never freezes the viewer.

    ``always`` follows the last step, or the step that failed (whose error then goes on to napari's
    handler), so a clean-up is never skipped; ``done`` follows in the next turn (a clean-up such as
    a repaint and the caller's own updates would add up to one long turn).
    """
    remaining = list(steps)

    def finish() -> None:
        if always is not None:
            always()
        if done is not None:
            QTimer.singleShot(STEP_PAUSE_MS, done)

    def next_step() -> None:
        try:
            if remaining:
                remaining.pop(0)()
        except BaseException:
            if always is not None:
                always()
            raise
        # the clean-up gets a turn of its own too: a repaint it sets off would add to the last step's
        QTimer.singleShot(STEP_PAUSE_MS, next_step if remaining else finish)

    QTimer.singleShot(STEP_PAUSE_MS, next_step if remaining else finish)


def results_in_front(viewer: napari.Viewer, names: list[str], active: str) -> None:
    """Put the named result layers on top of the list, in that order from the top, and make
    ``active`` the selected layer: the one napari's paint brush and Ctrl+Z act on (with two layers
    selected napari has no active layer)."""
    present = [viewer.layers[n] for n in names if n in viewer.layers]
    top = list(viewer.layers)[::-1][: len(present)]
    if top != present:  # each move repaints the canvas and the layer list: none when already in place
        for layer in reversed(present):
            viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))
    if active in viewer.layers and viewer.layers.selection.active is not viewer.layers[active]:
        viewer.layers.selection.active = viewer.layers[active]
