"""A reviewer's decisions on one prediction: the edits, as napari applies them, and what is held fixed.

Each action becomes ``(indices, values)`` that napari's ``Labels.data_setitem`` applies undoably;
:class:`ReviewState` remembers the predicted mask and the decided voxels, which re-sampling holds
fixed, and the edit log that goes into the provenance sidecar.
"""

from __future__ import annotations

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
class ReviewState:
    """What the reviewer has decided on one prediction (kept in the mask layer's metadata)."""

    predicted: np.ndarray  #: the mask as the model produced it
    decided: np.ndarray  #: bool: voxels in regions the user kept, adopted or erased
    edits: list[Edit] = field(default_factory=list)

    @classmethod
    def start(cls, predicted: np.ndarray) -> ReviewState:
        return cls(np.array(predicted, dtype=np.uint8, copy=True), np.zeros(predicted.shape, bool))

    def fixed(self, current: np.ndarray) -> np.ndarray:
        """Voxels to hold fixed when re-sampling: everything changed by hand, plus decided regions."""
        return self.decided | (np.asarray(current) != self.predicted)

    def record(self, edit: Edit, region: UncertainRegion | None = None) -> None:
        self.edits.append(edit)
        if region is not None and edit.action in ("keep", "adopt", "erase"):
            self.decided[region.bbox] |= region.mask

    def rebase(self, predicted: np.ndarray) -> None:
        """After a re-sample: the new prediction is the baseline; decisions and edit log are kept."""
        self.predicted = np.array(predicted, dtype=np.uint8, copy=True)
