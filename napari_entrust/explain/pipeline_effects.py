"""The whole pipeline intervened on once per modality: how the TrustMap and the mask change.

Each modality in turn is set to its healthy-tissue value inside the target's box and the
prediction is re-run with the same sampling, drawing hypotheses only where they reach the box (as
they would be in a whole run there); the change of the mean TrustMap over the target and the share
of the box whose label changed are that modality's effect.
"""

from __future__ import annotations

import numpy as np

from ..inference.engine import run_prediction
from ..inference.prediction import Prediction
from ..io.case import Case
from ..model.checkpoint import ModelBundle
from ..model.config import SamplingConfig
from ..progress import ShouldStop, Steps, rescaled
from .crop import TargetCrop


def case_box(crop: TargetCrop, grid, shape) -> tuple[slice, ...]:
    """The model-grid box on the case grid (rounded outwards)."""
    scale = [s / g for s, g in zip(shape, grid)]
    return tuple(slice(int(np.floor(b.start * f)), int(np.ceil(b.stop * f))) for b, f in zip(crop.box, scale))


def modality_effects(
    case: Case,
    bundle: ModelBundle,
    sampling: SamplingConfig,
    prediction: Prediction,
    target: np.ndarray,
    box: tuple[slice, ...],
    *,
    memory_mb: float = 1024,
    should_stop: ShouldStop | None = None,
) -> Steps[dict]:
    """Re-run the prediction with each modality set to its healthy-tissue value inside ``box`` (case grid).

    Returns modality -> change of the mean TrustMap over the target (new − old) and the share of the
    box's voxels whose mask label changed.
    """
    effects = {}
    mods = bundle.config.modalities
    for j, mod in enumerate(mods):
        image = case.images[mod].copy()
        head = image != 0
        region = np.zeros(image.shape, bool)
        region[box] = True
        image[region & head] = float(np.median(case.images[mod][head]))
        changed = Case(case.name, {**case.images, mod: image}, case.grid, layout=case.layout, sources=case.sources)
        pred = yield from rescaled(
            run_prediction(changed, bundle, sampling, memory_mb=memory_mb, should_stop=should_stop, within=box),
            j / len(mods),
            1 / len(mods),
            f"without {mod}: ",
        )
        effects[mod] = {
            "trustmap_change": float(pred.trustmap[target].mean() - prediction.trustmap[target].mean()),
            "mask_change": float((pred.mask[box] != prediction.mask[box]).mean()),
        }
    return effects
