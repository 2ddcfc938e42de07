"""Pauses that would otherwise freeze the viewer while EnTrust runs, moved off the GUI thread or avoided.

Measured on a 1 mm case (2-core CPU, Xvfb):
- the first Labels layer of a process JIT-compiles napari's label colour mapping (numba): 0.9-1.5 s
  in the GUI thread. :func:`compile_label_colours` pays it in the worker.
- with napari, torch and MONAI loaded (~0.55 M objects) a full garbage collection takes
  0.3-0.55 s, in whichever thread happens to allocate, while the GIL is held. Each run set off two
  or three. :func:`freeze_while_layers_kept` takes the objects alive when a run starts out of those
  passes (``gc.freeze``), which then traverse only what was made since.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

import numpy as np

from ..outputs.catalog import OUTPUTS

if TYPE_CHECKING:
    import napari

_compiled = threading.Event()


def compile_label_colours() -> None:
    """Once per process, in any thread: build a tiny Labels layer model (no Qt) in each of our
    label styles, which maps its thumbnail and so compiles the mapping the mask layer will use."""
    if _compiled.is_set():
        return
    from napari.layers import Labels

    for style in {id(o.style): o.style for o in OUTPUTS if o.kind == "labels"}.values():
        Labels(np.zeros((2, 2, 2), np.uint8), **style)
    _compiled.set()


def freeze_while_layers_kept(viewer: napari.Viewer) -> None:
    """Freeze the objects alive now out of full collections (GUI thread, when a run starts), until a
    layer of ``viewer`` is removed.

    Frozen objects are still freed by reference counting, but reference cycles among them are not
    collected while frozen, and napari layers are such cycles: a removed layer would keep its data.
    So any removal unfreezes (the next full pass then collects them); the next run freezes again."""
    viewer.layers.events.removed.connect(_unfreeze)  # napari ignores a callback already connected
    gc.freeze()


def _unfreeze(_event=None) -> None:
    gc.unfreeze()
