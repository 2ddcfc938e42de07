"""napari sample data: the phantom case, with its ground truth as extra layers."""

from __future__ import annotations

from ..phantom.phantom import make_phantom
from .anatomical_view import follow_current_viewer
from .layer_data import LayerTuple, case_layers, geometry_kwargs


def _phantom_layers(spacing: int, seed: int = 0) -> list[LayerTuple]:
    ph = make_phantom(seed=seed, spacing=spacing)
    layers = case_layers(ph.to_case(), extra_metadata={"entrust_phantom_seed": seed})
    place = geometry_kwargs(ph.affine)
    layers.append(
        (
            ph.conflict.astype("uint8"),
            {
                "name": "conflict (truth)",
                "opacity": 0.6,
                "visible": False,
                "metadata": {"entrust_role": "conflict ground truth", "events": [e.kind for e in ph.events]},
                **place,
            },
            "labels",
        )
    )
    follow_current_viewer()
    return layers


def phantom_2mm() -> list[LayerTuple]:
    """Brain tumour phantom (2 mm)."""
    return _phantom_layers(2)


def phantom_1mm() -> list[LayerTuple]:
    """Brain tumour phantom (1 mm)."""
    return _phantom_layers(1)
