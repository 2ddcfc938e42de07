"""A case opens as an upright radiological axial slice, whatever the file's voxel order (issue 17)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.plugin.anatomical_view import show_view, view_layout
from tests.helpers import write_nifti

LPS = np.diag([-2.0, -2.0, 2.0, 1.0]) + np.array([[0, 0, 0, 40.0], [0, 0, 0, 44.0], [0, 0, 0, -20.0], [0, 0, 0, 0]])
RAS = np.diag([2.0, 2.0, 2.0, 1.0]) + np.array([[0, 0, 0, -40.0], [0, 0, 0, -44.0], [0, 0, 0, -20.0], [0, 0, 0, 0]])


def head_with_marker(path, affine: np.ndarray):
    """A 'head' (value 300) with a bright rod (1000) through every axial slice at the patient's
    right-anterior, placed by world position so the file's voxel order does not matter."""
    shape = (40, 44, 20)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    world = nib.affines.apply_affine(affine, ijk)
    x, y = world[..., 0], world[..., 1]
    data = np.where((np.abs(x) < 30) & (np.abs(y) < 34), 300.0, 0.0).astype(np.float32)
    data[(x > 18) & (x < 26) & (y > 22) & (y < 30)] = 1000.0
    return write_nifti(path, data, affine)


def marker_quadrant(viewer) -> tuple[str, str]:
    """Where the marker is in the screenshot, relative to the centre of the head."""
    viewer.layers[0].contrast_limits = (0.0, 1000.0)
    caption = viewer.canvas.overlays["text"].visible
    viewer.canvas.overlays["text"].visible = False  # white text would read as marker
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float).mean(-1)
    viewer.canvas.overlays["text"].visible = caption
    head = np.argwhere(shot > 20)
    marker = np.argwhere(shot > 0.9 * shot.max())
    centre = (head.min(0) + head.max(0)) / 2
    row, col = marker.mean(0)
    return ("top" if row < centre[0] else "bottom"), ("left" if col < centre[1] else "right")


@pytest.mark.parametrize("affine", [RAS, LPS], ids=["RAS", "LPS"])
def test_the_patients_right_anterior_is_top_left_of_the_default_view(make_napari_viewer, tmp_path, affine):
    path = head_with_marker(tmp_path / "case_t1.nii.gz", affine)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(path), plugin="napari-entrust")
    assert marker_quadrant(viewer) == ("top", "left")
    assert viewer.dims.axis_labels[viewer.dims.order[0]].startswith("S")  # the slider moves through axial slices
    assert "R on the left" in viewer.canvas.overlays["text"].text
    show_view(viewer, "axial", "neurological")
    assert marker_quadrant(viewer) == ("top", "right")


def test_each_view_stays_upright_and_the_hypothesis_axis_is_named():
    axial, coronal, sagittal = (view_layout(v) for v in ("axial", "coronal", "sagittal"))
    assert axial.order == (2, 1, 0) and coronal.order == (1, 2, 0) and sagittal.order == (0, 2, 1)
    assert axial.orientation2d == coronal.orientation2d == sagittal.orientation2d == ("up", "left")
    assert view_layout("coronal", "neurological").orientation2d == ("up", "right")
    assert view_layout("sagittal", "neurological").orientation2d == ("up", "left")  # faces left either way
    stacked = view_layout("axial", ndim=4)
    assert stacked.order == (0, 3, 2, 1) and stacked.axis_labels[0] == "hypothesis"
    assert "S at the top" in coronal.caption and "A on the left" in sagittal.caption


def test_the_widget_turns_the_view_and_later_cases_keep_it(make_napari_viewer, tmp_path):
    from napari_entrust.plugin.run_widget.widget import EntrustWidget

    viewer = make_napari_viewer(show=True)
    widget = EntrustWidget(viewer)
    widget.view.convention.setCurrentText("neurological")
    viewer.open(str(head_with_marker(tmp_path / "case_t1.nii.gz", LPS)), plugin="napari-entrust")
    assert marker_quadrant(viewer) == ("top", "right")
    widget.view.view.setCurrentText("coronal")
    assert (
        viewer.dims.axis_labels[viewer.dims.order[0]].startswith("A")
        and "S at the top" in viewer.canvas.overlays["text"].text
    )
