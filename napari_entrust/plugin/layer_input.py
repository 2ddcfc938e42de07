"""From napari layers to a case: which layers feed a run, their geometry, and the way back.

No Qt here and napari only for type checking: these helpers take layer objects, so both widgets
and the tests share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..io import geometry
from ..io.case import Case
from ..io.modalities import ALIASES, MODALITIES
from ..io.nifti import ReferenceGrid

if TYPE_CHECKING:
    import napari


def layer_kind(layer) -> str:
    """``"image"``, ``"labels"``, ... (by class, so it works through napari's public-only proxies)."""
    return layer.__class__.__name__.lower()


def layer_modality(layer) -> str | None:
    """The modality a layer holds: from reader metadata, else from its name (``T1ce``, ``flair`` ...)."""
    mod = layer.metadata.get("entrust_modality") if hasattr(layer, "metadata") else None
    if mod in MODALITIES:
        return mod
    key = layer.name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    found = ALIASES.get(key)
    return found if found in MODALITIES else None


def layer_affine(layer) -> np.ndarray:
    """The layer's voxel -> world (mm) matrix, whatever mix of scale/translate/rotate/affine set it."""
    origin = np.asarray(layer.data_to_world(np.zeros(3)), dtype=float)
    affine = np.eye(4)
    for axis in range(3):
        unit = np.zeros(3)
        unit[axis] = 1.0
        affine[:3, axis] = np.asarray(layer.data_to_world(unit), dtype=float) - origin
    affine[:3, 3] = origin
    return affine


def placement(layer) -> dict:
    """Layer keyword arguments that put an output exactly where ``layer`` is (its transform copied)."""
    return geometry.napari_transform(layer_affine(layer))


def case_from_layers(
    layers: dict[str, napari.layers.Image],
) -> tuple[Case, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """A :class:`Case` from one Image layer per modality, and the maps case order -> layer order -> case order.

    Layers from our reader carry the reference file's grid in metadata, so results saved later
    overlay the original files. Other layers are taken at their napari geometry (world = RAS mm).
    """
    if not layers:
        raise InputError("viewer", "no modality layers: open a case (File > Open Folder) or the sample phantom")
    problems = []
    arrays = {}
    for mod, layer in layers.items():
        data = np.asarray(layer.data)
        if data.ndim != 3:
            problems.append(f"layer '{layer.name}' ({mod}) has {data.ndim} dimensions, expected a 3-D volume")
            continue
        if not np.isfinite(data).all():
            problems.append(f"layer '{layer.name}' ({mod}) holds {int((~np.isfinite(data)).sum())} NaN/Inf voxels")
        arrays[mod] = data
    shapes = {arrays[m].shape for m in arrays}
    if len(shapes) > 1:
        problems.append(
            "modality layers differ in shape: " + ", ".join(f"'{layers[m].name}' {arrays[m].shape}" for m in arrays)
        )
    affines = {m: layer_affine(layers[m]) for m in arrays}
    first = next(iter(layers))
    if len(shapes) == 1 and any(not np.allclose(a, affines[first], atol=1e-3) for a in affines.values()):
        problems.append(
            "modality layers are placed differently in the world (scale/translate/affine differ); "
            "resample them onto one grid first"
        )
    if problems:
        raise InputError("modality layers", problems[0], more=[("modality layers", p) for p in problems[1:]])

    ref = layers[first]
    meta = ref.metadata
    shape = arrays[first].shape
    grid = ReferenceGrid.from_dict(meta["entrust_grid"]) if "entrust_grid" in meta else None
    if (
        grid is not None
        and grid.canonical_shape == shape
        and np.allclose(grid.canonical_affine, affines[first], atol=1e-3)
    ):
        images = arrays  # reader layers: already RAS+ on the reference grid

        def to_layer(a: np.ndarray) -> np.ndarray:
            return a

        to_case = to_layer
    else:  # foreign layers: their own voxel order and geometry
        affine = affines[first]
        grid = ReferenceGrid.from_affine(meta.get("source") or ref.name, shape, affine)
        images = {m: geometry.to_canonical(a, affine)[0] for m, a in arrays.items()}

        def to_layer(a: np.ndarray) -> np.ndarray:
            return geometry.from_canonical(a, affine)

        def to_case(a: np.ndarray) -> np.ndarray:
            return geometry.to_canonical(a, affine)[0]

    sources = {m: str(layers[m].metadata.get("source") or f"napari layer '{layers[m].name}'") for m in layers}
    name = meta.get("entrust_case") or ref.name
    case = Case(
        name, {m: np.asarray(v, dtype=np.float32) for m, v in images.items()}, grid, layout="napari", sources=sources
    )
    return case, to_layer, to_case
