"""Where training crops may be centred: brain voxels, each rater's lesion, voxels the raters dispute.

Found once per case. In-memory cases keep them; cases in an on-disk store (:mod:`.case_store`)
have them written beside their arrays, so a sampler never reads a whole case to find them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BRAIN_STRIDE = 7  #: every 7th brain voxel is enough to draw background crops from


@dataclass(frozen=True)
class CropCentres:
    """Voxel coordinates (n, 3) of one case's crop centres."""

    brain: np.ndarray
    disputed: np.ndarray
    lesion: tuple[np.ndarray, ...]  #: one array per rater

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array mapping, to be saved with ``np.savez``."""
        return {"brain": self.brain, "disputed": self.disputed, **{f"lesion_{r}": a for r, a in enumerate(self.lesion)}}

    @classmethod
    def from_arrays(cls, arrays, n_raters: int) -> CropCentres:
        return cls(arrays["brain"], arrays["disputed"], tuple(arrays[f"lesion_{r}"] for r in range(n_raters)))


def find_crop_centres(images: np.ndarray, raters: np.ndarray) -> CropCentres:
    """Crop centres of a case: ``images`` (M, X, Y, Z) normalised, ``raters`` (R, X, Y, Z) labels."""
    small = np.int16 if max(images.shape[1:]) < np.iinfo(np.int16).max else np.int64
    return CropCentres(
        brain=np.argwhere(images[0] > 0)[::BRAIN_STRIDE].astype(small),
        disputed=np.argwhere(raters.min(0) != raters.max(0)).astype(small),
        lesion=tuple(np.argwhere(r > 0).astype(small) for r in raters),
    )
