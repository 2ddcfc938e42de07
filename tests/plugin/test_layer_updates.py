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


def test_a_layer_that_already_shows_its_data_gets_only_its_new_metadata(make_napari_viewer, qtbot):
    # re-sampling returns every feature map unchanged: redrawing each would cost the viewer a turn's work
    viewer = make_napari_viewer()
    finished = []
    data = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    show_layers(viewer, [(data, {"name": "F_c", "metadata": {"run": 1}}, "image")], lambda: finished.append(1))
    qtbot.waitUntil(lambda: bool(finished), timeout=5_000)
    layer, redrawn = viewer.layers["F_c"], []
    layer.events.data.connect(lambda e: redrawn.append(e))
    show_layers(viewer, [(data.copy(), {"name": "F_c", "metadata": {"run": 2}}, "image")], lambda: finished.append(2))
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=5_000)
    assert not redrawn and layer.metadata == {"run": 2}
    changed = data.copy()
    changed[1, 2, 3] += 1
    show_layers(viewer, [(changed, {"name": "F_c", "metadata": {"run": 3}}, "image")], lambda: finished.append(3))
    qtbot.waitUntil(lambda: len(finished) == 3, timeout=5_000)
    assert len(redrawn) >= 1 and np.asarray(layer.data)[1, 2, 3] == changed[1, 2, 3]


def test_new_result_layers_leave_the_selected_layer_and_insertion_selection_alone(make_napari_viewer, qtbot):
    # each selection change re-populated napari's layer controls: the caller selects once, at the end
    viewer = make_napari_viewer()
    mine = viewer.add_image(np.zeros((4, 5, 6), np.float32), name="T1ce")
    new = [(np.zeros((4, 5, 6), np.float32), {"name": n}, "image") for n in ("TrustMap", "entropy")]
    finished = []
    show_layers(viewer, new, lambda: finished.append(True))
    qtbot.waitUntil(lambda: bool(finished), timeout=5_000)
    assert viewer.layers.selection.active is mine
    later = viewer.add_image(np.zeros((4, 5, 6), np.float32), name="added by the user")
    assert viewer.layers.selection.active is later  # napari's own behaviour is back


def test_a_layer_removed_after_a_run_is_freed(make_napari_viewer, qtbot):
    """Runs freeze the objects alive at their start out of full collections (their 0.3-0.55 s
    pauses froze the viewer); a layer alive then and removed later must still be collected."""
    import gc
    import weakref

    from napari_entrust.plugin.first_use import freeze_while_layers_kept

    viewer = make_napari_viewer()
    layer = viewer.add_image(np.zeros((40, 50, 60), np.float32), name="T2")
    gone = weakref.ref(layer)
    try:
        freeze_while_layers_kept(viewer)
        assert gc.get_freeze_count() > 0
        viewer.layers.remove(layer)
        del layer
        qtbot.wait(20)
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()


def test_new_layers_end_shown_or_hidden_as_asked_and_a_hidden_one_the_user_showed_stays(make_napari_viewer, qtbot):
    # new visible layers are inserted hidden and shown in a later turn (insert and first draw apart)
    viewer = make_napari_viewer()
    tuples = [
        (np.zeros((4, 5, 6), np.uint8), {"name": "mask"}, "labels"),
        (np.zeros((4, 5, 6), np.float32), {"name": "entropy", "visible": False}, "image"),
    ]
    finished = []
    show_layers(viewer, tuples, lambda: finished.append(True))
    qtbot.waitUntil(lambda: bool(finished), timeout=5_000)
    assert viewer.layers["mask"].visible and not viewer.layers["entropy"].visible
    viewer.layers["entropy"].visible = True  # the user's choice survives the next update in place
    viewer.layers["mask"].visible = False
    show_layers(viewer, tuples, lambda: finished.append(True))
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=5_000)
    assert viewer.layers["entropy"].visible and not viewer.layers["mask"].visible
