"""The last prediction's result layers, kept beside the autosave so that a restore can go on.

A restore that brought back the mask alone left the review stuck: no TrustMap to find regions in,
no hypotheses to adopt. Once per prediction (after its first edit) the result layers are written,
by output and modality, with the mask's placement and the run's metadata; a restore rebuilds them
with the same code that made them (:func:`~napari_entrust.plugin.layer_data.output_layer`).
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

from ...outputs.catalog import BY_KEY, output_of_role
from ...review import recovery
from ..layer_data import output_layer
from ..layer_input import placement

_LOCK = threading.Lock()
_LATEST: dict[str, int] = {}  # per case key, the newest prediction asked to be kept

#: metadata that is the viewer's state, not the prediction's
_TRANSIENT = ("entrust_role", "entrust_modality", "entrust_review")


def _yield_the_cpu() -> None:
    """Run the calling thread at the lowest priority, where the system allows it per thread (Linux),
    so that writing a kept prediction never slows a re-sample the user started meanwhile."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


def keep_prediction(key: str, viewer, mask) -> threading.Thread:
    """Write the result layers other than the mask (in a thread: at 1 mm they are hundreds of MB)."""
    maps, outputs = {}, []
    for layer in viewer.layers:
        found = output_of_role(str(layer.metadata.get("entrust_role", "")))
        if found is None or found[0].key == "mask":
            continue
        name = f"{found[0].key}:{found[1] or ''}"
        maps[name] = np.asarray(layer.data)  # result layers are never edited: no copy needed
        outputs.append(name)
    meta = {k: v for k, v in mask.metadata.items() if k.startswith("entrust_") and k not in _TRANSIENT}
    header = {"outputs": outputs, "place": placement(mask), "metadata": meta}
    with _LOCK:
        _LATEST[key] = generation = _LATEST.get(key, 0) + 1

    def write() -> None:
        _yield_the_cpu()
        with _LOCK:  # one writer at a time, and a newer prediction is never overwritten by an older one
            if _LATEST.get(key) == generation:
                recovery.save_prediction(key, maps, header)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def kept_layers(key: str) -> list[tuple]:
    """The layer tuples of the kept prediction of a case (none if it was not kept or is unreadable)."""
    found = recovery.load_prediction(key)
    if found is None:
        return []
    maps, header = found
    out = []
    for name in header["outputs"]:
        key_, modality = name.split(":")
        out.append(output_layer(BY_KEY[key_], maps[name], modality or None, header["place"], header["metadata"]))
    return out
