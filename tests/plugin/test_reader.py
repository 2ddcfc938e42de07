"""The display chain: the sample phantom and a BraTS folder open as layers at the right place."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_entrust.io.modalities import MODALITIES
from napari_entrust.plugin.reader import get_reader

pytest.importorskip("napari")


def _world_centroid(layer, mask):
    return np.asarray(layer.data_to_world(ndimage.center_of_mass(mask)))


def test_sample_phantom_opens_as_layers_with_its_geometry(make_napari_viewer, phantom2):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-entrust", "phantom_2mm")
    names = [layer.name for layer in layers]
    assert names == ["T1", "T1ce", "T2", "FLAIR", "labels", "conflict (truth)"]
    for layer in layers:
        np.testing.assert_allclose(layer.scale, [2.0, 2.0, 2.0])
        np.testing.assert_allclose(layer.translate, phantom2.affine[:3, 3])
        assert layer.data.shape == (98, 116, 94)
    labels = viewer.layers["labels"]
    assert set(np.unique(labels.data)) == {0, 1, 2, 4}
    # a voxel's world position in napari is its position in mm (RAS), as in the NIfTI file
    centre_mm = np.asarray(ndimage.center_of_mass(labels.data > 0)) * 2.0 + phantom2.affine[:3, 3]
    np.testing.assert_allclose(_world_centroid(labels, labels.data > 0), centre_mm, atol=1e-6)
    lo, hi = viewer.layers["T1"].contrast_limits
    assert 0 <= lo < hi


def test_reader_opens_a_brats_folder_in_place(make_napari_viewer, brats_case_dir, phantom2):
    assert get_reader(str(brats_case_dir)) is not None
    viewer = make_napari_viewer(show=True)  # shown (under Xvfb in CI) so the GL canvas really draws
    viewer.open(str(brats_case_dir), plugin="napari-entrust")
    assert [layer.name for layer in viewer.layers] == ["T1", "T1ce", "T2", "FLAIR", "labels"]
    for layer, mod in zip(viewer.layers, MODALITIES):
        assert layer.metadata["entrust_modality"] == mod
        assert layer.metadata["source"].endswith(f"_{mod}.nii.gz")
        np.testing.assert_allclose(layer.scale, [2.0, 2.0, 2.0])
        np.testing.assert_array_equal(layer.data, phantom2.images[mod])
    viewer.dims.set_point(2, float(ndimage.center_of_mass(phantom2.labels > 0)[2] * 2 + phantom2.affine[2, 3]))
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot[..., :3].std() > 5  # something was drawn by the GL canvas


def test_reader_declines_what_it_cannot_read(tmp_path, brats_case_dir):
    (tmp_path / "notes.txt").write_text("x")
    assert get_reader(str(tmp_path)) is None
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader([str(tmp_path), str(tmp_path)]) is None


def test_single_volumes_open_as_named_layers_with_their_geometry(brats_case_dir, phantom2):
    flair, seg = next(brats_case_dir.glob("*_flair.nii.gz")), next(brats_case_dir.glob("*_seg.nii.gz"))
    layers = get_reader([str(flair), str(seg)])([str(flair), str(seg)])
    (image, image_kwargs, image_kind), (labels, labels_kwargs, labels_kind) = layers
    assert (image_kind, image_kwargs["name"], image_kwargs["metadata"]["entrust_modality"]) == (
        "image",
        "FLAIR",
        "flair",
    )
    assert labels_kind == "labels"
    np.testing.assert_array_equal(image, phantom2.images["flair"])
    np.testing.assert_array_equal(labels, phantom2.labels)
    for kwargs in (image_kwargs, labels_kwargs):
        np.testing.assert_allclose(kwargs["scale"], [2.0, 2.0, 2.0])
        np.testing.assert_allclose(kwargs["translate"], phantom2.affine[:3, 3])


def test_an_oblique_volume_opens_with_its_full_affine_and_a_warning(tmp_path):
    from napari_entrust.plugin.layer_data import ObliqueDisplayWarning
    from tests.helpers import small_volume, write_nifti

    angle = np.deg2rad(17)
    affine = np.eye(4)
    affine[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    path = write_nifti(tmp_path / "scan_t2.nii.gz", small_volume(), affine)
    with pytest.warns(ObliqueDisplayWarning):
        [(data, kwargs, kind)] = get_reader(str(path))(str(path))
    assert kind == "image" and kwargs["name"] == "T2"
    np.testing.assert_allclose(kwargs["affine"][:3, :3], affine[:3, :3], atol=1e-6)


def test_reader_opens_a_dicom_study_where_its_nifti_twin_lies(make_napari_viewer, tmp_path):
    import warnings

    from napari_entrust.phantom.dicom_writing import nifti_twin, write_dicom_study
    from napari_entrust.phantom.phantom import make_phantom

    volumes = write_dicom_study(make_phantom(seed=2, spacing=2), tmp_path / "study", other_grid=None)
    nifti_twin(volumes, tmp_path / "twin", "twin")
    assert get_reader(str(tmp_path / "study")) is not None
    viewer = make_napari_viewer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(str(tmp_path / "study"), plugin="napari-entrust")
        dicom = {layer.metadata["entrust_modality"]: layer for layer in viewer.layers}
        viewer.open(str(tmp_path / "twin"), plugin="napari-entrust")
    twin = {layer.metadata["entrust_modality"]: layer for layer in list(viewer.layers)[4:]}
    assert sorted(dicom) == sorted(MODALITIES) and "series 3 (AX T1 SE POST GD)" in dicom["t1ce"].metadata["source"]
    for mod in MODALITIES:
        a, b = dicom[mod], twin[mod]
        np.testing.assert_allclose(a.data_to_world([0, 0, 0]), b.data_to_world([0, 0, 0]), atol=1e-4)
        np.testing.assert_allclose(a.data_to_world(a.data.shape), b.data_to_world(b.data.shape), atol=1e-4)
        np.testing.assert_allclose(a.data, b.data, atol=float(np.abs(b.data).max()) * 1e-4)
