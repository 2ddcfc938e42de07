"""Writing outputs back on the reference grid exactly, atomically, never over an existing file."""

from __future__ import annotations

import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.errors import OutputError
from napari_entrust.io import geometry
from napari_entrust.io.loader import load_case
from napari_entrust.io.modalities import MODALITIES
from napari_entrust.io.nifti import save_nifti
from napari_entrust.io.output_folder import check_output_folder, output_folder
from tests.helpers import AFFINES, write_brats_folder, write_nifti


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_outputs_go_back_on_the_reference_grid_exactly(tmp_path, name):
    affine = AFFINES[name]
    paths = write_brats_folder(tmp_path / "case", affine=affine)
    src = nib.load(paths["t1"])
    marker = (3, 9, 4)  # a voxel we can follow through RAS+ and back
    data = np.asarray(src.dataobj).copy()
    data[marker] = 5000
    write_nifti(paths["t1"], data, affine)

    case = load_case(tmp_path / "case")
    # in memory: RAS+ order, the marker at the same world position
    canon_idx = np.unravel_index(np.argmax(case.images["t1"]), case.shape)
    world_in_memory = nib.affines.apply_affine(case.affine, canon_idx)
    np.testing.assert_allclose(world_in_memory, nib.affines.apply_affine(affine, marker), atol=1e-6)
    assert geometry.orientation_codes(case.affine) == "RAS"

    out = case.write(case.images["t1"], tmp_path / "out" / "t1_copy.nii.gz")
    written = nib.load(out)
    np.testing.assert_array_equal(np.asarray(written.dataobj), data)  # same voxel order as the input
    np.testing.assert_allclose(written.affine, affine, atol=1e-5)
    np.testing.assert_allclose(written.get_qform(), affine, atol=1e-5)
    np.testing.assert_allclose(written.get_sform(), affine, atol=1e-5)
    assert int(written.header["qform_code"]) == int(src.header["qform_code"])
    assert int(written.header["sform_code"]) == int(src.header["sform_code"])


def test_four_d_outputs_keep_their_trailing_axis(tmp_path):
    affine = AFFINES["LPS"]
    write_brats_folder(tmp_path / "case", affine=affine)
    case = load_case(tmp_path / "case")
    stack = np.stack([case.images[m] for m in MODALITIES], axis=-1)
    out = nib.load(case.write(stack, tmp_path / "stack.nii.gz"))
    assert out.shape == (12, 14, 10, 4)
    for i, m in enumerate(MODALITIES):
        np.testing.assert_array_equal(np.asarray(out.dataobj)[..., i], np.asarray(nib.load(case.sources[m]).dataobj))


def test_writer_refuses_to_overwrite_and_keeps_the_old_file(tmp_path):
    write_brats_folder(tmp_path / "case")
    case = load_case(tmp_path / "case")
    target = tmp_path / "out.nii.gz"
    case.write(case.images["t1"], target)
    before = target.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        case.write(case.images["t2"], target)
    assert target.read_bytes() == before
    case.write(case.images["t2"], target, overwrite=True)
    assert target.read_bytes() != before


def test_failed_write_leaves_no_partial_file_and_the_old_one_intact(tmp_path, monkeypatch):
    write_brats_folder(tmp_path / "case")
    case = load_case(tmp_path / "case")
    target = case.write(case.images["t1"], tmp_path / "out.nii.gz")
    before = target.read_bytes()

    def failing_save(img, filename):
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nib, "save", failing_save)
    with pytest.raises(OutputError, match="No space left"):
        case.write(case.images["t2"], target, overwrite=True)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unwritable_output_location(tmp_path):
    write_brats_folder(tmp_path / "case")
    case = load_case(tmp_path / "case")
    blocker = tmp_path / "a_file"
    blocker.write_text("I am a file, not a folder")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        case.write(case.images["t1"], blocker / "sub" / "out.nii.gz")
    with pytest.raises(OutputError, match="must end in .nii.gz"):
        save_nifti(nib.Nifti1Image(np.zeros((2, 2, 2)), np.eye(4)), tmp_path / "out.png.gz")


def test_a_shared_folder_is_cleared_of_what_a_killed_run_left_and_keeps_the_rest(tmp_path):
    """A killed run into a shared results folder can leave a moved-aside old table inside it; the
    next run removes that, and its own staging sibling, but nothing of a run still going."""
    out = tmp_path / "results"
    out.mkdir()
    (out / "table.md").write_text("old")
    (out / "theirs.md").write_text("someone else's")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = dead.stdout.strip()
    left = [out / f".table.md.replaced-{pid}-0badc0de", tmp_path / f".results.partial-{pid}-0badc0de"]
    left[0].write_text("old copy")
    left[1].mkdir()
    running = out / f".table.md.replaced-{os.getpid()}-1234abcd"  # this process: still running
    running.write_text("in use")
    with output_folder(out, overwrite=True, ours={"table.md"}, shared=True) as staging:
        (staging / "table.md").write_text("new")
    assert not any(p.exists() for p in left) and running.exists()
    assert (out / "table.md").read_text() == "new" and (out / "theirs.md").read_text() == "someone else's"


def test_a_result_caught_mid_swap_by_a_killed_run_is_put_back_not_lost(tmp_path):
    """kill -9 between moving the old result aside and moving the new one in: the next run puts
    the old one back before it checks the target, so without --overwrite it is refused, not lost."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    old = tmp_path / f".out.replaced-{dead.stdout.strip()}-0badc0de"
    old.mkdir()
    (old / "mask.nii.gz").write_text("the previous mask")
    with pytest.raises(OutputError, match="not empty"):
        check_output_folder(tmp_path / "out", False, {"mask.nii.gz"})
    assert (tmp_path / "out" / "mask.nii.gz").read_text() == "the previous mask" and not old.exists()
