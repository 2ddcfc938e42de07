"""Which region to explain, and which of its region channels: what a user can name on the command line."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..inference.prediction import Prediction
from ..model.trustmap import uncertainty
from ..review.regions import find_uncertain_regions


def region_channel(prob: np.ndarray, target: np.ndarray) -> int:
    """The region channel (WT/TC/ET) that is most uncertain over the target."""
    per_channel = [float(uncertainty(prob[c][target]).mean()) for c in range(prob.shape[0])]
    return int(np.argmax(per_channel))


def choose_target(prediction: Prediction, voxel_ml: float, region: str = "1") -> tuple[np.ndarray, str]:
    """``region``: ``lesion`` (the predicted tumour) or N, the N-th most uncertain region of the review
    table (:func:`napari_entrust.review.regions.find_uncertain_regions`). Returns the mask and a description."""
    if region == "lesion":
        mask = prediction.mask > 0
        if not mask.any():
            raise InputError(None, "the prediction holds no tumour; choose an uncertain region instead of 'lesion'")
        return mask, "the predicted lesion"
    try:
        number = int(region)
    except ValueError:
        raise InputError(
            None, f"--region must be 'lesion' or a region number (1 = most uncertain), got {region!r}"
        ) from None
    regions = find_uncertain_regions(
        prediction.trustmap,
        voxel_ml=voxel_ml,
        weights=prediction.weights,
        specific=prediction.specific,
        conflict=prediction.conflict,
    )
    if not 1 <= number <= len(regions):
        raise InputError(None, f"region {number} does not exist: the prediction has {len(regions)} uncertain regions")
    r = regions[number - 1]
    return r.full_mask(prediction.trustmap.shape), f"uncertain region {number} ({r.size_ml:.2f} mL, {r.why})"
