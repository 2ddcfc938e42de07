"""A DICOM study in napari: opened, run, corrected and saved back as a DICOM Segmentation that
references the study, voxel for voxel where the mask layer is."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from napari_entrust.phantom.dicom_writing import write_dicom_study
from napari_entrust.phantom.phantom import make_phantom
from tests.helpers import dock_widgets, seg_on_grid

napari = pytest.importorskip("napari")


def test_a_corrected_mask_of_a_dicom_study_saves_as_dicom_seg(make_napari_viewer, qtbot, tmp_path):
    import highdicom as hd
    import pydicom

    from napari_entrust.plugin.review_widget import save_panel

    study = tmp_path / "exports" / "study"
    write_dicom_study(make_phantom(seed=4, spacing=2), study)
    viewer = make_napari_viewer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the T2 series is on another grid, and is resampled
        viewer.open(str(study), plugin="napari-entrust")
    run, review = dock_widgets(viewer)
    run._samples.setValue(2)
    run._steps.setValue(2)
    run.run()
    qtbot.waitUntil(lambda: run._status.text().startswith(("done:", "EnTrust")), timeout=120_000)
    assert run._status.text().startswith("done:"), run._status.text()
    mask = viewer.layers["mask"]
    corrected = np.array(mask.data)
    corrected[tuple(np.argwhere(corrected == 0)[0])] = 2  # a reviewer's one-voxel correction
    mask.data = corrected
    suggested = review.saving.suggested_path()
    assert suggested.parent == study.parent  # beside the study: a file inside it would be read as part of it
    path = tmp_path / "corrected.seg.dcm"
    review.saving.save(path, overwrite=True)
    seg = hd.seg.segread(path)
    ras = np.asarray(mask.metadata["entrust_affine"])  # where the layer's voxels are (RAS mm)
    np.testing.assert_allclose(mask.data_to_world([3, 4, 5]), (ras @ [3, 4, 5, 1])[:3], atol=1e-6)
    back = seg_on_grid(seg.get_volume(combine_segments=True), ras, mask.data.shape)
    as_brats = np.select([back == 1, back == 2, back == 3], [1, 2, 4], 0)
    np.testing.assert_array_equal(as_brats, corrected)
    first = pydicom.dcmread(sorted(study.iterdir())[0], stop_before_pixels=True)
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    record = json.loads((tmp_path / "corrected.seg.json").read_text())
    assert record["mask"] == "corrected.seg.dcm" and "DICOM Segmentation" in record["mask_format"]
    assert save_panel.suggested_save_path({}, tmp_path) == tmp_path / f"case{save_panel.CORRECTED_SUFFIX}"
