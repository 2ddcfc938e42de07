"""Parts of the mask that hold no tumour core belong to no tumour: the mask leaves them out.

A model trained on varied contrasts learns that oedema can be barely brighter than brain, and then
calls a few patches of grey matter oedema, centimetres from the tumour (measured on our phantoms:
most of a fine-tuned model's false positives lay in grey matter, more than 6 mm from the lesion).
In BraTS terms the whole tumour is oedema around a core, so a separate part of the mask with no
core is left out of it. The hypotheses, probabilities and TrustMap stay as the model drew them:
where the hypotheses disagreed on such a part, the TrustMap still shows it to the reviewer (on the
other generator, dropping the parts from every output lowered the TrustMap's AUROC at T1ce-only
foci from 0.51 to 0.48). Nothing is dropped when no part holds core (a tumour seen only as oedema stays
whole), nor a part holding a voxel the user marked tumour.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..io.labels import REGION_LABELS

#: parts touch through faces, edges or corners: a thin bridge of oedema keeps a part attached
CONNECTIVITY = ndimage.generate_binary_structure(3, 3)


def coreless_parts(
    mask: np.ndarray, *, box: tuple[slice, slice, slice] | None = None, keep: np.ndarray | None = None
) -> np.ndarray | None:
    """The voxels of ``mask``'s connected parts that hold no tumour core (NCR or ET), when another
    part does: a bool volume of ``mask``'s shape, or None when nothing is to be dropped.

    ``box``: where ``mask`` can be non-zero (None: anywhere). ``keep``: voxels a user marked tumour."""
    box = box or tuple(slice(None) for _ in mask.shape)
    parts, n = ndimage.label(mask[box] > 0, CONNECTIVITY)
    if n < 2:
        return None
    index = np.arange(1, n + 1)
    held = ndimage.sum_labels(np.isin(mask[box], REGION_LABELS["TC"]), parts, index=index) > 0
    if not held.any():
        return None
    if keep is not None:
        held |= ndimage.sum_labels(keep[box], parts, index=index) > 0
    if held.all():
        return None
    dropped = np.zeros(mask.shape, bool)
    dropped[box] = np.isin(parts, index[~held])
    return dropped


def drop_coreless_parts(mask: np.ndarray, **where) -> int:
    """Clear :func:`coreless_parts` from ``mask`` in place (``where``: its ``box`` and ``keep``);
    returns how many voxels were cleared. Every method's mask goes through it, so that comparisons
    stay fair."""
    dropped = coreless_parts(mask, **where)
    if dropped is None:
        return 0
    mask[dropped] = 0
    return int(dropped.sum())
