"""Axial, coronal and sagittal views that stay upright, in the radiological or neurological convention.

Layers are placed in napari's world in RAS+ millimetres (world axis 0 runs to the patient's Right,
1 to Anterior, 2 to Superior; a K-hypothesis axis, when shown, comes first). napari's default
shows the last two world axes, which is a sagittal slice lying on its side. Here the display is
turned instead of the data: ``dims.order`` picks the slice axis and ``camera.orientation2d`` says
which way the two shown axes increase on screen, so world positions, the writer and saved files
are untouched. Radiological: the patient's right on screen left; neurological: on screen right.
Anterior is at the top of axial slices, superior at the top of the others, and sagittal slices
face left (anterior on screen left) in both conventions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

#: world axes (RAS+) of the slider, the vertical and the horizontal screen axis, per view
VIEWS = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}
CONVENTIONS = ("radiological", "neurological")
#: slider names of the three world axes: what moving along each one does
AXIS_NAMES = ("R ← L (sagittal slices)", "A ← P (coronal slices)", "S ← I (axial slices)")
_POSITIVE, _NEGATIVE = ("R", "A", "S"), ("L", "P", "I")


@dataclass(frozen=True)
class ViewLayout:
    """What napari needs to show one anatomical view: dims order, 2-D orientation, axis labels."""

    order: tuple[int, ...]
    orientation2d: tuple[str, str]
    axis_labels: tuple[str, ...]
    caption: str  #: e.g. ``axial, radiological: R on the left, L on the right, A at the top``


def view_layout(view: str = "axial", convention: str = "radiological", ndim: int = 3) -> ViewLayout:
    """The layout of ``view`` for a viewer of ``ndim`` world axes (the last three RAS+)."""
    if view not in VIEWS or convention not in CONVENTIONS or ndim < 3:
        raise ValueError(f"unknown view {view!r} / convention {convention!r} for {ndim} dims")
    slider, vertical, horizontal = VIEWS[view]
    lead = ndim - 3
    order = tuple(range(lead)) + tuple(lead + a for a in (slider, vertical, horizontal))
    right_on_left = horizontal != 0 or convention == "radiological"  # sagittal: anterior on the left
    orientation = ("up", "left" if right_on_left else "right")
    left_edge = _POSITIVE[horizontal] if right_on_left else _NEGATIVE[horizontal]
    right_edge = _NEGATIVE[horizontal] if right_on_left else _POSITIVE[horizontal]
    edges = f"{left_edge} on the left, {right_edge} on the right, {_POSITIVE[vertical]} at the top"
    caption = f"{view}, {convention}: {edges}"
    labels = tuple(["hypothesis"] + [f"axis {i}" for i in range(1, lead)]) + AXIS_NAMES if lead else AXIS_NAMES
    return ViewLayout(order, orientation, labels, caption)


def show_view(viewer, view: str = "axial", convention: str = "radiological") -> ViewLayout:
    """Turn ``viewer`` to ``view`` (keeping its current slice positions); returns the layout used."""
    ndim = viewer.dims.ndim
    layout = view_layout(view, convention, max(ndim, 3))
    _chosen[viewer] = (view, convention)
    if ndim < 3:  # a 2-D viewer has nothing to turn
        return layout
    camera, caption = viewer.scene.camera, viewer.canvas.overlays["text"]
    # each change re-slices every layer: change only what differs (a run inserts ~20 layers)
    if tuple(viewer.dims.axis_labels) != layout.axis_labels:
        viewer.dims.axis_labels = layout.axis_labels
    if tuple(viewer.dims.order) != layout.order:
        viewer.dims.order = layout.order
    if tuple(str(o) for o in camera.orientation2d) != layout.orientation2d:
        camera.orientation2d = layout.orientation2d
    if caption.text != layout.caption or not caption.visible:
        caption.text, caption.visible = layout.caption, True
    return layout


_chosen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  #: viewer -> (view, convention)


def chosen_view(viewer) -> tuple[str, str]:
    """The view and convention last shown in ``viewer`` (axial, radiological before any)."""
    return _chosen.get(viewer, ("axial", "radiological"))


def follow_case_layers(viewer) -> None:
    """Show a case's layers anatomically from the first one on, and keep the view upright when the
    hypothesis axis is added; only layers that carry a case's geometry (``entrust_affine``) count.
    Safe to call again: the viewer is hooked once."""
    if viewer in _hooked:
        return
    _hooked.add(viewer)

    def inserted(event) -> None:
        layer = event.value
        if "entrust_affine" in getattr(layer, "metadata", {}) and layer.ndim >= 3:
            show_view(viewer, *chosen_view(viewer))

    viewer.layers.events.inserted.connect(inserted)


_hooked: weakref.WeakSet = weakref.WeakSet()


def follow_current_viewer() -> None:
    """:func:`follow_case_layers` for the viewer napari is opening into (readers and sample data
    return plain layer data and are not given the viewer)."""
    from napari import current_viewer

    viewer = current_viewer()
    if viewer is not None:
        follow_case_layers(viewer)
