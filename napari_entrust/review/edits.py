"""A reviewer's decisions on one prediction: the edits, as napari applies them, and what is held fixed.

Each action becomes ``(indices, values)`` that napari's ``Labels.data_setitem`` applies undoably;
:class:`ReviewState` remembers the predicted mask and the decided voxels, which re-sampling holds
fixed, and the edit log that goes into the provenance sidecar; all three follow the viewer's undo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..outputs.provenance import now
from .regions import UncertainRegion


@dataclass
class Edit:
    """One user decision, as written to the provenance sidecar."""

    action: str  #: keep | adopt | erase | paint | restore
    voxels: int
    region: int | None = None  #: region number in the table, when the action was on a region
    hypothesis: int | None = None  #: for adopt: 1-based hypothesis number
    bbox: list[list[int]] | None = None
    time: str = field(default_factory=now)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def bbox_of(indices: tuple[np.ndarray, ...]) -> list[list[int]]:
    """The bounding box ``[[start, stop], ...]`` of voxel indices (empty without voxels)."""
    return [[int(ix.min()), int(ix.max()) + 1] for ix in indices] if indices and indices[0].size else []


def adopt_values(region: UncertainRegion, samples: np.ndarray, k: int) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``(indices, values)`` that replace the region by hypothesis ``k`` (0-based) — only inside it."""
    idx = region.indices()
    return idx, samples[k][idx]


def erase_values(region: UncertainRegion) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``(indices, values)`` that clear the region (label 0)."""
    idx = region.indices()
    return idx, np.zeros(idx[0].size, np.uint8)


@dataclass
class Decision:
    """One recorded edit, the region it decided and the undo step that made it."""

    edit: Edit
    region: UncertainRegion | None = None  #: a kept, adopted or erased region (its voxels are held fixed)
    step: object | None = None  #: the viewer's undo step (any object); None: no undo can take it back


def _always_done(_step: object) -> bool:
    return True


@dataclass
class ReviewState:
    """What the reviewer has decided on one prediction (kept in the mask layer's metadata).

    The edits follow the viewer's undo and redo: an edit whose undo step is undone is not in the
    log, its region is not reviewed and its voxels are not held fixed, until it is redone.
    ``is_done(step)`` says whether a step is in effect (the review session follows napari's undo).
    """

    predicted: np.ndarray  #: the mask as the model produced it
    settled: np.ndarray  #: bool: decided voxels no undo can take back (restored, or from before a re-sample)
    decisions: list[Decision] = field(default_factory=list)
    is_done: Callable[[object], bool] = field(default=_always_done, repr=False, compare=False)

    @classmethod
    def start(cls, predicted: np.ndarray) -> ReviewState:
        return cls(np.array(predicted, dtype=np.uint8, copy=True), np.zeros(predicted.shape, bool))

    def in_effect(self) -> list[Decision]:
        """The decisions not undone, in order."""
        return [d for d in self.decisions if d.step is None or self.is_done(d.step)]

    @property
    def edits(self) -> list[Edit]:
        """The edit log as it stands (what the sidecar and the autosave record)."""
        return [d.edit for d in self.in_effect()]

    @property
    def decided(self) -> np.ndarray:
        """bool: voxels in regions the user kept, adopted or erased (and not undone)."""
        out = self.settled.copy()
        for d in self.in_effect():
            if d.region is not None:
                out[d.region.bbox] |= d.region.mask
        return out

    def fixed(self, current: np.ndarray) -> np.ndarray:
        """Voxels to hold fixed when re-sampling: everything changed by hand, plus decided regions."""
        return self.decided | (np.asarray(current) != self.predicted)

    def reviewed(self, region: UncertainRegion, decided: np.ndarray | None = None) -> bool:
        """Whether most of a region's voxels have been decided (by location, so it survives a new
        search); ``decided``: :attr:`decided`, when the caller asks for many regions at once."""
        decided = self.decided if decided is None else decided
        return bool(decided[region.bbox][region.mask].mean() >= 0.5) if region.voxels else False

    def record(self, edit: Edit, region: UncertainRegion | None = None, step: object | None = None) -> None:
        """Log an edit; a kept, adopted or erased region's voxels become decided."""
        decides = region is not None and edit.action in ("keep", "adopt", "erase")
        self.decisions.append(Decision(edit, region if decides else None, step))

    def rebase(self, predicted: np.ndarray, kept: list[Decision] | None = None) -> None:
        """After a re-sample: the new prediction is the baseline; the decisions in effect when it
        started (``kept``, default: now) stay, and no undo takes them back any more."""
        kept = self.in_effect() if kept is None else kept
        settled = self.settled.copy()
        for d in kept:
            if d.region is not None:
                settled[d.region.bbox] |= d.region.mask
        self.settled = settled
        self.decisions = [Decision(d.edit) for d in kept]
        self.predicted = np.array(predicted, dtype=np.uint8, copy=True)
