"""The napari plugin end to end: sample → run → layers → review → adopt → undo → save → read back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.io.geometry import to_canonical
from napari_entrust.io.labels import LABEL_COLOURS, from_internal
from napari_entrust.plugin.reader import get_reader
from napari_entrust.plugin.review_widget import save_panel
from napari_entrust.plugin.review_widget.save_panel import recovery_key
from napari_entrust.review import recovery
from tests.helpers import dock_widgets

napari = pytest.importorskip("napari")
from napari.utils.colormaps.standardize_color import transform_color  # noqa: E402


def to_rgba(colour: str) -> list[float]:
    return list(transform_color(colour)[0])


RESULT_LAYERS = [
    "mask",
    "hypotheses",
    "TrustMap",
    "total uncertainty (entropy)",
    "hypotheses disagree (mutual information)",
    "sensitivity to conflict (probe)",
    "shared evidence (F_c)",
    "modalities disagree (F_cf)",
    *[f"evidence only in {m} (F_u)" for m in ("T1", "T1ce", "T2", "FLAIR")],
    *[f"weight of {m} (w_m)" for m in ("T1", "T1ce", "T2", "FLAIR")],
]


@pytest.fixture(autouse=True)
def close_answers(monkeypatch):
    """What the "unsaved corrections" question is answered (the viewers close at teardown): discard."""
    asked = []

    def answer(parent, case):
        asked.append(case)
        return asked.answers.pop(0) if asked.answers else "discard"

    asked = type("Asked", (list,), {})()
    asked.answers = []
    monkeypatch.setattr(save_panel, "ask_about_unsaved", answer)
    return asked


def outlined(viewer, region) -> bool:
    """The "review region" outline is shown and covers the region's voxels where the mask has them
    (checked in world space, on up to 60 of them)."""
    layer, mask = viewer.layers["review region"], viewer.layers["mask"]
    voxels = np.transpose(region.indices())
    local = [
        np.round(layer.world_to_data(mask.data_to_world(v))).astype(int) for v in voxels[:: max(1, len(voxels) // 60)]
    ]
    inside = all(all(0 <= i < n for i, n in zip(p, layer.data.shape)) for p in local)
    return layer.visible and inside and all(layer.data[tuple(p)] for p in local)


def _run(qtbot, run, *, samples=2, steps=3, timeout=120_000):
    run._samples.setValue(samples)
    run._steps.setValue(steps)
    run.run()
    qtbot.waitUntil(lambda: run._status.text().startswith(("done:", "EnTrust", "cancelled")), timeout=timeout)


def test_run_review_adopt_undo_save_and_read_back(opened_sample, qtbot, tmp_path, close_answers, monkeypatch):
    viewer, run, review = opened_sample
    assert {mod: run._pickers[mod].currentText() for mod in run._pickers} == {
        "t1": "T1",
        "t1ce": "T1ce",
        "t2": "T2",
        "flair": "FLAIR",
    }
    _run(qtbot, run)
    assert run._status.text().startswith("done"), run._status.text()
    t1 = viewer.layers["T1"]
    for name in RESULT_LAYERS:
        layer = viewer.layers[name]
        expected = (2, *t1.data.shape) if name == "hypotheses" else t1.data.shape
        assert layer.data.shape == expected, name
        np.testing.assert_allclose(layer.scale[-3:], t1.scale)
        np.testing.assert_allclose(layer.translate[-3:], t1.translate)
        assert layer.visible == (name in ("mask", "TrustMap")), name
    assert viewer.layers["TrustMap"].contrast_limits == [0.0, 1.0]
    assert "case uncertainty score" in run._summary.text() and "WT (whole tumour):" in run._summary.text()
    assert "% of 12 held-out phantoms" in run._summary.text()  # the score's place on its scale
    assert "about" in run._estimate.text()  # the expected time of the next run, from this one
    run._samples.setValue(run._samples.value() * 4)
    assert "about" in run._estimate.text()
    # readable results: TrustMap then mask on top of the list, the mask selected (paint and undo act on it)
    assert [layer.name for layer in viewer.layers][-2:] == ["mask", "TrustMap"]
    assert viewer.layers.selection.active.name == "mask"
    # the BraTS labels in fixed colours, named in the legend; maps clear where they are 0
    colours = viewer.layers["mask"].colormap.map([1, 2, 4])
    np.testing.assert_allclose(colours, [to_rgba(LABEL_COLOURS[v]) for v in (1, 2, 4)], atol=1e-6)
    assert all(word in run.legend.text() for word in ("NCR", "ED", "ET", "oedema"))
    for name in ("TrustMap", "modalities disagree (F_cf)", "shared evidence (F_c)", "weight of T1 (w_m)"):
        layer = viewer.layers[name]
        assert layer.colormap.map([0.0])[0][3] == 0.0 and layer.blending == "translucent", name

    regions = review.regions.find_regions()
    assert regions and review.regions.table.rowCount() == len(regions)
    masses = [r.mass for r in regions]
    assert masses == sorted(masses, reverse=True)
    assert all(r.why for r in regions)

    # pick a region where hypothesis 2 differs from the mask, adopt it there only
    mask = viewer.layers["mask"]
    samples = np.asarray(viewer.layers["hypotheses"].data)
    before = np.array(mask.data, copy=True)
    row = next(i for i, r in enumerate(regions) if (samples[1][r.indices()] != before[r.indices()]).any())
    region = regions[row]
    review.regions.select(row)
    world = mask.data_to_world(region.centre)
    assert viewer.dims.point[-1] == pytest.approx(world[-1], abs=2.0)  # the slider moved to the region
    assert review.shortcuts == ["Shift-N", "Shift-K", "Shift-A"]
    assert outlined(viewer, region)
    review.edits.adopt(1)
    after = np.asarray(mask.data)
    inside = region.full_mask(after.shape)
    assert (after[~inside] == before[~inside]).all()  # nothing changed outside the region
    np.testing.assert_array_equal(after[inside], samples[1][inside])
    assert review.regions.table.item(row, 4).text() == "yes"
    changed = int((after != before).sum())
    assert f"{changed} voxels changed" in review.status.text()  # adopt says what it did
    state = review.session.state()
    review.edits.erase()  # a second edit, then both undone with napari's undo (Ctrl+Z)
    assert [e.action for e in state.edits] == ["adopt", "erase"]
    mask.undo()
    mask.undo()
    np.testing.assert_array_equal(mask.data, before)
    # the review state moved with the mask: not reviewed, no edits logged, nothing held fixed
    assert review.regions.table.item(row, 4).text() == "no"
    assert state.edits == [] and not state.fixed(np.asarray(mask.data)).any()
    mask.redo()
    np.testing.assert_array_equal(mask.data[inside], samples[1][inside])
    assert [e.action for e in state.edits] == ["adopt"] and review.regions.table.item(row, 4).text() == "yes"
    assert state.fixed(np.asarray(mask.data))[inside].all()

    # a small region is zoomed in on, so that it is more than a few pixels
    viewer.reset_view()
    whole = viewer.camera.zoom
    review.regions.select(min(range(len(regions)), key=lambda i: regions[i].voxels))
    assert viewer.camera.zoom >= 3 * whole
    review.regions.select_next()  # Shift-N
    chosen = review.session.selected
    review.regions.find_regions()  # a new search keeps the selection where it was
    assert review.session.selected is not None and review.session.selected.voxels == chosen.voxels
    assert outlined(viewer, chosen)

    # closing the window with unsaved corrections asks; Cancel keeps it open
    close_answers.answers.append("cancel")
    viewer.window._qt_window.close()
    assert len(close_answers) == 1 and viewer.window._qt_window.isVisible()

    # save: the dialog proposes a name from the case; NIfTI equal to the layer on the input's grid,
    # sidecar with provenance; the next save proposes the folder saved to
    proposed = []

    def dialog(parent, title, path, filters):
        proposed.append(Path(path))
        return str(tmp_path / "corrected.nii.gz"), filters

    monkeypatch.setattr(save_panel.QFileDialog, "getSaveFileName", dialog)
    review.saving.save_button.click()
    case = mask.metadata["entrust_case"]
    assert proposed[0].name == f"{case}_entrust_corrected.nii.gz"
    assert review.saving.suggested_path() == tmp_path / proposed[0].name and not review.saving.unsaved()
    out, sidecar = tmp_path / "corrected.nii.gz", tmp_path / "corrected.json"
    img = nib.load(out)
    grid = viewer.layers["T1"].metadata["entrust_grid"]
    np.testing.assert_allclose(img.affine, np.asarray(grid["affine"]))
    canonical, _ = to_canonical(np.asarray(img.dataobj), img.affine)
    np.testing.assert_array_equal(canonical, from_internal(np.asarray(mask.data), "brats2021"))
    record = json.loads(sidecar.read_text())
    assert record["model"]["sha256"] and record["parameters"]["samples"] == 2
    assert [e["action"] for e in record["edits"]] == ["adopt"] and record["edits"][0]["hypothesis"] == 2

    # reader round trip of what the writer wrote
    reader = get_reader(str(out))
    assert reader is not None
    [(data, kwargs, kind)] = reader(str(out))
    assert kind == "labels"
    np.testing.assert_array_equal(data, mask.data)
    np.testing.assert_allclose(kwargs["scale"], mask.scale)
    np.testing.assert_allclose(kwargs["translate"], mask.translate)


def test_writer_contribution_saves_labels_on_the_source_grid(make_napari_viewer, brats_case_dir, tmp_path):
    """A layer read from an LPS file comes back in the file's voxel order, affine and codes."""
    from tests.helpers import write_nifti

    lps = np.diag([-2.0, -2.0, 2.0, 1.0])
    lps[:3, 3] = [90, 100, -70]
    data = np.zeros((20, 22, 18), np.uint8)
    data[5:9, 6:12, 4:7] = 2
    data[6:8, 8:10, 5] = 4
    seg = write_nifti(tmp_path / "case_seg.nii.gz", data, lps)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(seg), plugin="napari-entrust")
    assert layer._type_string == "labels"
    out = tmp_path / "saved.nii.gz"
    layer.save(str(out), plugin="napari-entrust")
    img = nib.load(out)
    np.testing.assert_allclose(img.affine, lps)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    assert int(img.header["sform_code"]) == 1


def test_cancel_stops_quickly_and_leaves_the_viewer_unchanged(opened_sample, qtbot):
    viewer, run, _ = opened_sample
    names = [layer.name for layer in viewer.layers]
    run._samples.setValue(8)
    run._steps.setValue(50)
    run.run()
    qtbot.waitUntil(lambda: "sampling" in run._status.text(), timeout=60_000)
    # the widget's own bar shows the stage, and how long is left once a little is done
    qtbot.waitUntil(lambda: "left" in run.progress.format(), timeout=60_000)
    assert run.progress.isVisible() and "sampling" in run.progress.format() and run.progress.value() > 0
    t0 = time.perf_counter()
    run._cancel_button.click()
    qtbot.waitUntil(lambda: run._run_button.isEnabled(), timeout=5_000)
    assert time.perf_counter() - t0 < 1.0
    assert "cancelled" in run._status.text()
    assert [layer.name for layer in viewer.layers] == names
    assert not run.progress.isVisible() and run.progress.value() == 0  # reset after Cancel


def test_errors_become_notifications_and_the_viewer_stays_usable(make_napari_viewer, qtbot, monkeypatch):
    from napari_entrust.plugin import qt_parts

    shown = []
    monkeypatch.setattr(qt_parts, "show_error", shown.append)
    viewer = make_napari_viewer()
    run, _ = dock_widgets(viewer)
    run.run()  # no layers at all
    assert shown and "choose a layer" in shown[-1]
    for mod, name in (("t1", "T1"), ("t1ce", "T1ce"), ("t2", "T2"), ("flair", "FLAIR")):
        viewer.add_image(np.random.default_rng(0).random((20, 22, 18) if mod != "flair" else (20, 22, 17)), name=name)
    run.run()  # shapes differ
    assert "differ in shape" in shown[-1] and "FLAIR" in shown[-1]
    viewer.layers["FLAIR"].data = np.full((20, 22, 18), np.nan)
    run.run()
    assert "NaN" in shown[-1]
    assert run._run_button.isEnabled() and not run._runner.running


def test_out_of_memory_is_reported_and_the_viewer_stays_usable(make_napari_viewer, qtbot, monkeypatch):
    from napari_entrust.plugin import worker as _runner

    def exhausted(*args, **kwargs):
        yield 0.1, "encoding"
        raise MemoryError("cannot allocate 40 GiB")

    shown = []
    monkeypatch.setattr(_runner, "run_prediction", exhausted)
    monkeypatch.setattr(_runner, "show_error", shown.append)
    viewer = make_napari_viewer()
    viewer.open_sample("napari-entrust", "phantom_2mm")
    names = [layer.name for layer in viewer.layers]
    run, _ = dock_widgets(viewer)
    run.run()
    qtbot.waitUntil(lambda: not run._runner.running, timeout=30_000)
    assert shown and "out of memory" in shown[-1] and "lower the sample count" in shown[-1]
    assert [layer.name for layer in viewer.layers] == names
    assert run._run_button.isEnabled()


def test_an_unexpected_error_names_the_stage_and_a_log_with_its_traceback(
    make_napari_viewer, qtbot, monkeypatch, tmp_path
):
    from napari_entrust.plugin import worker as _runner

    def broken(*args, **kwargs):
        yield 0.1, "sampling hypotheses"
        raise ZeroDivisionError("a bug")

    shown = []
    monkeypatch.setenv("ENTRUST_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(_runner, "run_prediction", broken)
    monkeypatch.setattr(_runner, "show_error", shown.append)
    viewer = make_napari_viewer()
    viewer.open_sample("napari-entrust", "phantom_2mm")
    run, _ = dock_widgets(viewer)
    run.run()
    qtbot.waitUntil(lambda: not run._runner.running, timeout=30_000)
    logs = list((tmp_path / "logs").glob("*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and "ZeroDivisionError" in logs[0].read_text()
    assert shown and "sampling hypotheses" in shown[-1] and "a bug" in shown[-1] and str(logs[0]) in shown[-1]
    assert run._run_button.isEnabled()


def test_resample_with_edits_autosave_and_restore(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-entrust", "phantom_2mm")
    run, review = dock_widgets(viewer)
    _run(qtbot, run, samples=2, steps=3)
    regions = review.regions.find_regions()
    mask = viewer.layers["mask"]
    samples = np.asarray(viewer.layers["hypotheses"].data)
    row = next(i for i, r in enumerate(regions) if (samples[1][r.indices()] != mask.data[r.indices()]).any())
    review.regions.select(row)
    review.edits.adopt(1)
    region = regions[row]
    edited = np.array(mask.data, copy=True)
    fixed = region.full_mask(edited.shape)

    # autosave: the corrections reach the recovery file without any save
    key = recovery_key(mask.metadata)
    qtbot.waitUntil(lambda: recovery.find_recovery(key) is not None, timeout=5_000)
    np.testing.assert_array_equal(recovery.load_recovery(recovery.find_recovery(key)).labels, edited)

    review.resampling.resample()
    qtbot.waitUntil(lambda: review.status.text().startswith(("re-sampled", "EnTrust")), timeout=120_000)
    assert review.status.text().startswith("re-sampled"), review.status.text()
    mask = viewer.layers["mask"]
    np.testing.assert_array_equal(mask.data[fixed], edited[fixed])  # the user's decision held
    assert (viewer.layers["TrustMap"].data[fixed] == 0).all()
    assert [e.action for e in review.session.state().edits] == ["adopt", "resample"]
    # the corrected region is no longer uncertain: nothing selected and no stale outline of it
    assert review.session.selected is None and not viewer.layers["review region"].visible
    assert viewer.layers["mask"].metadata["entrust_summary"]["parameters"]["fixed_voxels"] == int(fixed.sum())

    # the same case opened again offers the autosaved corrections
    qtbot.waitUntil(
        lambda: recovery.load_recovery(recovery.find_recovery(key)).record["edits"][-1]["action"] == "resample",
        timeout=5_000,
    )
    saved = recovery.load_recovery(recovery.find_recovery(key)).labels
    review.saving.keeping.join(30)  # the resampled prediction's layers, written beside the autosave
    other = make_napari_viewer()
    _, review2 = other.window.add_plugin_dock_widget("napari-entrust", "Review uncertainty")
    assert not review2.saving.restore_button.isVisibleTo(review2)
    other.open_sample("napari-entrust", "phantom_2mm")
    assert review2.saving.restore_button.isVisibleTo(review2)
    assert "Unsaved corrections" in review2.saving.restore_label.text()
    review2.saving.restore()
    np.testing.assert_array_equal(other.layers["mask"].data, saved)
    np.testing.assert_allclose(other.layers["mask"].scale, other.layers["T1"].scale)
    assert [e.action for e in review2.session.state().edits][-1] == "restore"
    # the prediction's layers came back too: the review goes on where it stopped
    assert "restored" in review2.status.text() and "prediction's layers" in review2.status.text()
    for name in ("TrustMap", "modalities disagree (F_cf)", "hypotheses", "weight of T1 (w_m)"):
        np.testing.assert_array_equal(other.layers[name].data, viewer.layers[name].data)
    assert review2.regions.find_regions()
    # a new run holds the restored corrections fixed instead of running over them
    _, run2 = other.window.add_plugin_dock_widget("napari-entrust", "EnTrust")
    _run(qtbot, run2, samples=2, steps=3)
    assert "held fixed" in run2._status.text(), run2._status.text()
    np.testing.assert_array_equal(other.layers["mask"].data[fixed], saved[fixed])
    assert [e.action for e in review2.session.state().edits][-2:] == ["restore", "run"]
    # saving the corrected mask removes the recovery file (the work is now safe on disk)
    review2.saving.save(tmp_path / "restored.nii.gz")
    assert recovery.find_recovery(key) is None


def test_worklist_next_case_then_explain_a_region(make_napari_viewer, qtbot, brats_case_dir, tmp_path):
    """`entrust predict FOLDER` -> worklist; the widget opens its cases in order, and a region gets explained."""
    from napari_entrust.cli import main
    from napari_entrust.io.geometry import to_canonical

    folder = tmp_path / "cases"
    folder.mkdir()
    for name in ("first", "second"):
        (folder / name).symlink_to(brats_case_dir)
    assert main(["predict", str(folder), "--out", str(tmp_path / "out"), "--samples", "2", "--steps", "2"]) == 0
    order = [line.split(",")[1] for line in (tmp_path / "out" / "worklist.csv").read_text().splitlines()[1:]]

    viewer = make_napari_viewer(show=True)
    run, review = dock_widgets(viewer)
    run.worklist.picker.path = str(tmp_path / "out" / "worklist.csv")
    for name in order:
        run.worklist.open_next_case()
        qtbot.waitUntil(
            lambda name=name: (
                run.worklist.status.text().startswith(f"{name}: case") and run._status.text().startswith("done")
            ),
            timeout=60_000,
        )
        saved = nib.load(str(tmp_path / "out" / name / "mask.nii.gz"))
        expected, _ = to_canonical(np.asarray(saved.dataobj), saved.affine)
        np.testing.assert_array_equal(viewer.layers["mask"].data, expected)  # the saved result, as a run shows it
        assert {"T1", "T1ce", "T2", "FLAIR", "TrustMap", "hypotheses"} <= {layer.name for layer in viewer.layers}
    run.worklist.open_next_case()
    assert run.worklist.status.text() == "worklist done"

    regions = review.regions.find_regions()
    row = min(range(len(regions)), key=lambda i: regions[i].voxels)  # the smallest region: quick
    review.regions.select(row)
    review.explaining.explain_selected()
    qtbot.waitUntil(lambda: review.status.text().startswith(("explained", "EnTrust")), timeout=300_000)
    assert review.status.text().startswith("explained"), review.status.text()
    assert sum(bar.value() for bar in review.explaining.bars.values()) == pytest.approx(100, abs=2)
    layer = viewer.layers["attribution"]
    assert layer.data.shape == viewer.layers["mask"].data.shape and layer.data.max() > 0
    np.testing.assert_allclose(layer.scale, viewer.layers["mask"].scale)
    assert "Deletion AUC" in review.explaining.text.text()
    source = Path(viewer.layers["T1"].metadata["source"])  # Save proposes the case's folder and name
    case = viewer.layers["mask"].metadata["entrust_case"]
    assert review.saving.suggested_path() == source.parent / f"{case}_entrust_corrected.nii.gz"
    all_modalities = float(layer.data.sum())
    review.explaining.attribution_modality.setCurrentIndex(2)  # T1ce alone: one part of the sum, updated in place
    assert viewer.layers["attribution"] is layer and 0 < float(layer.data.sum()) < all_modalities
