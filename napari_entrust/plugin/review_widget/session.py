"""What the review panels share: the viewer, the last run's layers, the review state and the regions.

Every edit goes through :meth:`ReviewSession.apply` (napari's ``data_setitem`` inside
``block_history``: one undo step) and is recorded in the :class:`ReviewState` kept in the mask
layer's metadata; listeners (the table, the autosave) hear of every edit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ...outputs.catalog import BY_KEY
from ...review.edits import Edit, ReviewState
from ...review.regions import UncertainRegion
from ..worker import PredictionRunner

if TYPE_CHECKING:
    import napari


def atom_voxels(atom) -> int:
    """Voxels changed by one napari paint-history atom (a mask atom or an (indices, old, new) tuple)."""
    if isinstance(atom, tuple):
        return int(np.asarray(atom[0][0]).size)
    mask = getattr(atom, "mask", None)
    return int(mask.sum()) if mask is not None else int(np.asarray(getattr(atom, "old_values", [])).size)


class ReviewSession:
    """The state of one review, shared by the panels of the review widget."""

    def __init__(self, viewer: napari.viewer.Viewer, set_status: Callable[[str], None]):
        self.viewer = viewer
        self.set_status = set_status
        self.regions: list[UncertainRegion] = []
        self.selected: UncertainRegion | None = None
        self.runner = PredictionRunner(on_state=self._running_changed, on_status=set_status)
        self.on_edit: list[Callable[[], None]] = []  #: called after every edit (table, autosave)
        self.on_regions: list[Callable[[], None]] = []  #: called when the regions were found anew
        self.on_running: list[Callable[[bool], None]] = []  #: called when a run starts and ends
        self._applying = False  # our own edits, not hand painting
        self._hooked_mask = None

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
        if self._hooked_mask is not mask:
            mask.events.paint.connect(self._painted)
            self._hooked_mask = mask
        return mask

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
        """One undoable edit of the mask layer, recorded in the review state."""
        self.set_labels(indices, values)
        self.state().record(edit, region)
        if region is not None:
            region.reviewed = True
        self.edited()

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
        if self._applying:
            return
        voxels = sum(atom_voxels(atom) for atom in (event.value or []))
        self.state().edits.append(Edit("paint", voxels))
        self.edited()

    def _running_changed(self, running: bool) -> None:
        for listener in self.on_running:
            listener(running)
