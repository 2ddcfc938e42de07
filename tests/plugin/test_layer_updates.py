"""Result layers shown one per event-loop turn: in place by name, the layer list repainted once."""

from __future__ import annotations

import numpy as np
import pytest

from napari_entrust.plugin.layer_updates import show_layers

napari = pytest.importorskip("napari")


def _layer_list(viewer):
    return viewer.window._qt_viewer.layers


def test_layers_update_in_place_and_the_layer_list_comes_back(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    finished = []
    first = [(np.zeros((4, 5, 6), np.float32), {"name": "TrustMap"}, "image")]
    show_layers(viewer, first, lambda: finished.append(_layer_list(viewer).updatesEnabled()))
    qtbot.waitUntil(lambda: bool(finished), timeout=5_000)
    layer = viewer.layers["TrustMap"]

    seen_during = []
    second = [
        (np.ones((4, 5, 6), np.float32), {"name": "TrustMap"}, "image"),
        (np.ones((4, 5, 6), np.uint8), {"name": "mask"}, "labels"),
    ]
    viewer.layers.events.inserted.connect(lambda e: seen_during.append(_layer_list(viewer).updatesEnabled()))
    show_layers(viewer, second, lambda: finished.append(_layer_list(viewer).updatesEnabled()))
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=5_000)

    assert finished == [True, True]  # repainted again by the time the caller hears it is done
    assert seen_during == [False]  # no repaint of the list while layers were still coming
    assert viewer.layers["TrustMap"] is layer and np.asarray(layer.data).max() == 1  # the same layer, new data
    assert [lay.name for lay in viewer.layers] == ["TrustMap", "mask"]


def test_a_failing_update_leaves_the_layer_list_working(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    done = []
    bad = [
        (np.zeros((4, 5, 6), np.float32), {"name": "TrustMap"}, "image"),
        (np.zeros((4, 5, 6), np.float32), {"name": "points?"}, "points"),  # no such kind here
        (np.zeros((4, 5, 6), np.uint8), {"name": "mask"}, "labels"),
    ]
    with qtbot.captureExceptions() as errors:
        show_layers(viewer, bad, lambda: done.append(True))
        qtbot.waitUntil(lambda: bool(errors), timeout=5_000)
        qtbot.wait(50)
    assert _layer_list(viewer).updatesEnabled()
    assert not done  # the caller's "done" means every layer is there
    assert [lay.name for lay in viewer.layers] == ["TrustMap"]
