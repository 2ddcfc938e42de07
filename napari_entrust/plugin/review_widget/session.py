"""What the review panels share: the viewer, the last run's layers, the review state and the regions.

Every edit goes through :meth:`ReviewSession.apply` (napari's ``data_setitem`` inside
``block_history``: one undo step) and is recorded in the :class:`ReviewState` kept in the mask
layer's metadata, with the undo step that made it. The session mirrors napari's undo stack (every
new step comes as a ``paint`` event; undo and redo are followed), so the log, the reviewed flags
and the fixed voxels follow undo and redo. Listeners (the table, the autosave) hear of all three.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ...outputs.catalog import BY_KEY
from ...review.edits import Edit, ReviewState
from ...review.regions import UncertainRegion
from ..worker import PredictionRunner

if TYPE_CHECKING:
    import napari


def unwrapped(layer):
    """The layer itself: napari hands plugins a new proxy of it on every access, so identity is
    checked on what the proxy wraps."""
    return getattr(layer, "__wrapped__", layer)


def atom_voxels(atom) -> int:
    """Voxels changed by one napari paint-history atom (a mask atom or an (indices, old, new) tuple)."""
    if isinstance(atom, tuple):
        return int(np.asarray(atom[0][0]).size)
    mask = getattr(atom, "mask", None)
    return int(mask.sum()) if mask is not None else int(np.asarray(getattr(atom, "old_values", [])).size)


class ReviewSession:
    """The state of one review, shared by the panels of the review widget."""

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        set_status: Callable[[str], None],
        on_progress: Callable[[float, str], None] | None = None,
    ):
        self.viewer = viewer
        self.set_status = set_status
        self.regions: list[UncertainRegion] = []
        self.selected: UncertainRegion | None = None
        self.runner = PredictionRunner(
            on_state=self._running_changed, on_status=set_status, on_progress=on_progress, viewer=viewer
        )
        self.on_edit: list[Callable[[], None]] = []  #: called after every edit (table, autosave)
        self.on_regions: list[Callable[[], None]] = []  #: called when the regions were found anew
        self.on_running: list[Callable[[bool], None]] = []  #: called when a run starts and ends
        self._applying = False  # our own edits, not hand painting
        self._hooked_mask = None
        self._done: list[object] = []  # the mask's undo steps in effect, oldest first (napari's undo stack)
        self._undone: list[object] = []  # steps undone, last undone last (napari's redo stack)
        self._last_step: object | None = None
        self._followed: weakref.WeakSet = weakref.WeakSet()  # mask layers whose events we follow

    # -- the last run's layers ---------------------------------------------------------------------
    def layer(self, name: str, role: str | None = None):
        """The layer called ``name`` (with that ``entrust_role``), or None."""
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            if role is None or layer.metadata.get("entrust_role") == role:
                return layer
        return None

    def output_layer(self, key: str):
        """The layer of one output of the last run (``trustmap``, ``samples`` …), or None."""
        output = BY_KEY[key]
        return self.layer(output.layer_name(), output.role())

    def maps_by_modality(self, key: str) -> dict[str, np.ndarray]:
        """Per-modality result maps (``weights`` / ``specific``), found by the role the run gave them."""
        prefix = f"{BY_KEY[key].layer} "
        return {
            layer.metadata["entrust_modality"]: np.asarray(layer.data)
            for layer in self.viewer.layers
            if str(layer.metadata.get("entrust_role", "")).startswith(prefix)
        }

    def mask(self):
        """The mask layer of the last run, with its review state and its paint events followed."""
        mask = self.output_layer("mask")
        if mask is None:
            raise ValueError("no EnTrust result in the viewer: run EnTrust first (Plugins > EnTrust)")
        if "entrust_review" not in mask.metadata:
            mask.metadata["entrust_review"] = ReviewState.start(mask.data)
        layer = unwrapped(mask)
        if self._hooked_mask is not layer:
            if layer not in self._followed:
                mask.events.paint.connect(self._painted)  # a bound method: napari holds it weakly
                self._follow_undo(mask)
                self._followed.add(layer)
            self._hooked_mask = layer
            self._done.clear()  # a new or reset layer: its undo history starts here
            self._undone.clear()
        mask.metadata["entrust_review"].is_done = self._is_done
        return mask

    def _is_done(self, step: object) -> bool:
        return any(s is step for s in self._done)

    def _follow_undo(self, mask) -> None:
        """Follow napari's undo and redo of the mask (its Ctrl+Z / Ctrl+Shift+Z call ``layer.undo()``
        and ``layer.redo()``; napari emits no event for them). The layer holds the session weakly,
        so closing the viewer frees both."""
        me, layer = weakref.ref(self), weakref.ref(unwrapped(mask))
        for name, source, target in (("undo", "_done", "_undone"), ("redo", "_undone", "_done")):
            original = getattr(mask, name)

            def replay(original=original, source=source, target=target) -> None:
                original()
                session = me()
                if session is not None and session._hooked_mask is layer() and getattr(session, source):
                    getattr(session, target).append(getattr(session, source).pop())
                    session.edited()

            setattr(mask, name, replay)

    def state(self) -> ReviewState:
        return self.mask().metadata["entrust_review"]

    def adopt_mask(self, mask, state: ReviewState) -> None:
        """A new mask layer (after re-sampling or a restore) carries the review on."""
        mask.metadata["entrust_review"] = state
        self._hooked_mask = None
        self.mask()

    def input_layers(self, mask) -> dict:
        """The modality layers the last run read, by modality."""
        inputs = mask.metadata.get("entrust_inputs", {})
        missing = [name for name in inputs.values() if name not in self.viewer.layers]
        if missing or not inputs:
            raise ValueError(f"the input layers {', '.join(missing) or '(unknown)'} are gone; reopen the case")
        return {m: self.viewer.layers[name] for m, name in inputs.items()}

    def selected_region(self) -> UncertainRegion:
        if self.selected is None:
            raise ValueError("select a region in the table first")
        return self.selected

    # -- edits -------------------------------------------------------------------------------------
    def apply(self, region: UncertainRegion | None, indices, values, edit: Edit) -> None:
        """One undoable edit of the mask layer, recorded in the review state; says what it changed."""
        changed = int((np.asarray(self.mask().data)[indices] != values).sum())
        self._last_step = None
        self.set_labels(indices, values)
        self.state().record(edit, region, self._last_step)
        self.edited()
        where = f" in region {region.number}" if region is not None else ""
        size = f" ({changed * region.size_ml / max(region.voxels, 1):.2f} mL)" if region is not None else ""
        self.set_status(f"{edit.action}{where}: {changed} voxels changed{size}; Ctrl+Z undoes")

    def set_labels(self, indices, values) -> None:
        """Change mask voxels as one step of napari's undo (not counted as hand painting)."""
        mask = self.mask()
        self._applying = True
        try:
            with mask.block_history():
                mask.data_setitem(indices, values)
        finally:
            self._applying = False

    def edited(self) -> None:
        for listener in self.on_edit:
            listener()

    def _painted(self, event) -> None:
        """A new undo step on the mask: ours (from :meth:`apply`) or the user's brush."""
        if unwrapped(event.source) is not self._hooked_mask:
            return
        step = object()
        self._done.append(step)
        self._undone.clear()  # napari drops its redo stack on any new step
        if self._applying:
            self._last_step = step
            return
        self.state().record(Edit("paint", sum(atom_voxels(atom) for atom in (event.value or []))), step=step)
        self.edited()

    def _running_changed(self, running: bool) -> None:
        for listener in self.on_running:
            listener(running)
