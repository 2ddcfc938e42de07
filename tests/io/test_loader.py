"""Loading cases in every layout, keeping geometry, and clear errors for every kind of bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.errors import InputError
from napari_entrust.io import geometry
from napari_entrust.io.loader import ResampledWarning, inspect_case, load_case
from napari_entrust.io.modalities import MODALITIES
from tests.helpers import AFFINES, small_volume, write_brats_folder, write_nifti


@pytest.mark.parametrize("scheme, suffix", [("brats2021", ".nii.gz"), ("brats2023", ".nii.gz"), ("brats2021", ".nii")])
def test_brats_folders_load(tmp_path, scheme, suffix):
    labels = np.zeros((12, 14, 10), np.uint8)
    labels[4:7, 4:7, 4:7] = 2
    labels[5, 5, 5] = 4 if scheme == "brats2021" else 3
    write_brats_folder(tmp_path, scheme=scheme, suffix=suffix, labels=labels)
    case = load_case(tmp_path)
    assert case.modalities == MODALITIES
    assert case.layout == scheme
    assert case.labels[5, 5, 5] == 4  # internal convention: ET = 4 for both years
    assert case.labels.sum() == 26 * 2 + 4


def test_msd_four_d_image_and_explicit_mapping_give_the_same_case(tmp_path):
    paths = write_brats_folder(tmp_path / "brats", affine=AFFINES["LPS"])
    vols = {m: np.asarray(nib.load(p).dataobj) for m, p in paths.items()}
    msd = np.stack([vols[m] for m in ("flair", "t1", "t1ce", "t2")], axis=-1)
    write_nifti(tmp_path / "msd" / "imagesTr" / "BRATS_001.nii.gz", msd, AFFINES["LPS"])
    msd_labels = np.zeros((12, 14, 10), np.uint8)
    msd_labels[4:6, 4:6, 4:6] = 1  # MSD: 1 = oedema
    msd_labels[5, 5, 5] = 3  # MSD: 3 = enhancing
    write_nifti(tmp_path / "msd" / "labelsTr" / "BRATS_001.nii.gz", msd_labels, AFFINES["LPS"])

    from_folder = load_case(tmp_path / "brats")
    from_msd = load_case(tmp_path / "msd" / "imagesTr" / "BRATS_001.nii.gz")
    from_map = load_case({"t1n": paths["t1"], "t1c": paths["t1ce"], "T2": paths["t2"], "FLAIR": paths["flair"]})
    assert from_msd.layout == "msd" and from_msd.label_convention == "msd"
    for m in MODALITIES:
        np.testing.assert_array_equal(from_msd.images[m], from_folder.images[m])
        np.testing.assert_array_equal(from_map.images[m], from_folder.images[m])
    canon = geometry.to_canonical(msd_labels, AFFINES["LPS"])[0]
    assert np.all(from_msd.labels[canon == 1] == 2) and np.all(from_msd.labels[canon == 3] == 4)


def test_modalities_on_other_grids_are_resampled_with_a_warning(tmp_path):
    paths = write_brats_folder(tmp_path, shape=(20, 20, 20))
    coarse = np.diag([2.0, 2.0, 2.0, 1.0])
    coarse[:3, 3] = 0.5  # a 2 mm grid covering the same extent
    flair = np.asarray(nib.load(paths["flair"]).dataobj)
    write_nifti(paths["flair"], flair.reshape(10, 2, 10, 2, 10, 2).mean(axis=(1, 3, 5)), coarse)
    with pytest.warns(ResampledWarning, match="flair"):
        case = load_case(tmp_path)
    assert case.resampled == ["flair"]
    assert case.images["flair"].shape == case.shape == (20, 20, 20)
    assert any("resampled" in n for n in case.notes)


def test_non_overlapping_grids_are_an_error(tmp_path):
    paths = write_brats_folder(tmp_path)
    far = np.diag([1.0, 1.0, 1.0, 1.0])
    far[:3, 3] = 500.0
    write_nifti(paths["t2"], small_volume(), far)
    with pytest.raises(InputError, match="does not overlap") as err:
        load_case(tmp_path)
    assert "case_t2.nii.gz" in str(err.value)


def test_shapes_that_disagree_without_usable_affines_are_an_error(tmp_path):
    paths = write_brats_folder(tmp_path)
    write_nifti(paths["t1ce"], small_volume((12, 14, 11)), np.eye(4), codes=0)
    with pytest.raises(InputError, match="no usable affine") as err:
        load_case(tmp_path)
    assert "case_t1ce.nii.gz" in str(err.value)


def test_same_shape_without_affine_is_taken_as_the_reference_grid(tmp_path):
    paths = write_brats_folder(tmp_path, affine=AFFINES["LPS"])
    write_nifti(paths["t2"], small_volume(seed=2), np.eye(4), codes=0)
    case = load_case(tmp_path)
    assert any("no usable affine" in n for n in case.notes)


def _expect(tmp_path, match, culprit, **kwargs):
    with pytest.raises(InputError, match=match) as err:
        load_case(kwargs.pop("source", tmp_path), **kwargs)
    assert culprit in str(err.value), str(err.value)
    return err.value


def test_missing_modality(tmp_path):
    paths = write_brats_folder(tmp_path)
    paths["t2"].unlink()
    _expect(tmp_path, "missing modality t2", str(tmp_path))


def test_duplicated_modality(tmp_path):
    write_brats_folder(tmp_path)
    write_nifti(tmp_path / "case_flair.nii", small_volume(), np.eye(4))
    err = _expect(tmp_path, "modality flair is given by 2 files", "case_flair.nii.gz")
    assert "case_flair.nii," in str(err) or str(err).endswith("case_flair.nii")


def test_duplicated_modality_in_an_explicit_mapping(tmp_path):
    paths = write_brats_folder(tmp_path)
    with pytest.raises(InputError, match="given twice"):
        load_case(
            {"t1": paths["t1"], "t1n": paths["t1"], "t1ce": paths["t1ce"], "t2": paths["t2"], "flair": paths["flair"]}
        )


def test_unreadable_file(tmp_path):
    write_brats_folder(tmp_path)
    (tmp_path / "case_t1ce.nii.gz").write_bytes(b"this is not an image at all" * 10)
    _expect(tmp_path, "cannot be read as NIfTI", "case_t1ce.nii.gz")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_truncated_file(tmp_path, suffix):
    paths = write_brats_folder(tmp_path, shape=(30, 30, 30), suffix=suffix)
    raw = paths["flair"].read_bytes()
    paths["flair"].write_bytes(raw[: len(raw) * 2 // 3])
    _expect(tmp_path, "truncated or corrupt|cannot be read", f"case_flair{suffix}")


@pytest.mark.parametrize("shape", [(12, 14), (12, 14, 10, 2, 2), (12, 14, 1)])
def test_not_three_dimensional(tmp_path, shape):
    paths = write_brats_folder(tmp_path)
    write_nifti(
        paths["t2"], np.ones(shape, np.float32) * np.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1)), np.eye(4)
    )
    _expect(tmp_path, "expected a 3-D volume", "case_t2.nii.gz")


def test_trailing_singleton_axis_is_accepted(tmp_path):
    paths = write_brats_folder(tmp_path)
    write_nifti(paths["t2"], small_volume(seed=2)[..., None], np.eye(4))
    assert load_case(tmp_path).images["t2"].shape == (12, 14, 10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_voxels(tmp_path, bad):
    paths = write_brats_folder(tmp_path)
    data = small_volume(seed=3)
    data[5, 5, 5] = bad
    data[6, 6, 6] = bad
    write_nifti(paths["flair"], data, np.eye(4))
    _expect(tmp_path, "contains 2 NaN/Inf voxel", "case_flair.nii.gz")


def test_constant_volume(tmp_path):
    paths = write_brats_folder(tmp_path)
    write_nifti(paths["t1"], np.zeros((12, 14, 10), np.float32), np.eye(4))
    _expect(tmp_path, "is empty: every voxel is 0", "case_t1.nii.gz")


def test_all_problems_are_reported_together(tmp_path):
    paths = write_brats_folder(tmp_path)
    write_nifti(paths["t1"], np.zeros((12, 14, 10), np.float32), np.eye(4))
    paths["flair"].write_bytes(b"junk")
    err = _expect(tmp_path, "2 problems", "case_t1.nii.gz")
    assert "case_flair.nii.gz" in str(err)


@pytest.mark.parametrize(
    "values, match",
    [
        ((0, 1, 2, 5), r"unexpected label values \[5\]"),
        ((0, 3, 4), r"unexpected label values \[3\]"),
        ((0, -1), r"unexpected label values \[-1\]"),
    ],
)
def test_label_files_with_unexpected_values(tmp_path, values, match):
    labels = np.zeros((12, 14, 10), np.int16)
    for i, v in enumerate(values):
        labels[i, 0, 0] = v
    write_brats_folder(tmp_path, labels=labels)
    _expect(tmp_path, match, "case_seg.nii.gz")


def test_label_files_with_fractional_values(tmp_path):
    labels = np.zeros((12, 14, 10), np.float32)
    labels[3, 3, 3] = 0.5
    write_brats_folder(tmp_path, labels=labels.astype(np.float32))
    write_nifti(tmp_path / "case_seg.nii.gz", labels, np.eye(4))
    _expect(tmp_path, "non-integer values", "case_seg.nii.gz")


def test_path_that_does_not_exist(tmp_path):
    _expect(tmp_path, "does not exist", "nowhere", source=tmp_path / "nowhere")
    paths = write_brats_folder(tmp_path / "c")
    with pytest.raises(InputError, match="does not exist"):
        load_case({**{m: paths[m] for m in MODALITIES}, "t2": tmp_path / "gone.nii.gz"})


def test_folder_without_case_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    _expect(tmp_path, "holds no BraTS-named modality files", str(tmp_path))


def test_folder_with_two_cases(tmp_path):
    write_brats_folder(tmp_path)
    write_nifti(tmp_path / "other_t1.nii.gz", small_volume(), np.eye(4))
    with pytest.raises(InputError):
        load_case(tmp_path)


def test_msd_image_with_wrong_volume_count(tmp_path):
    path = write_nifti(tmp_path / "img.nii.gz", np.stack([small_volume(seed=i) for i in range(3)], -1), np.eye(4))
    _expect(tmp_path, "has 3 volumes", "img.nii.gz", source=path)


def test_inspect_case_lists_passed_and_failed_checks(tmp_path):
    paths = write_brats_folder(tmp_path)
    write_nifti(paths["t2"], np.full((12, 14, 10), 7.0, np.float32), np.eye(4))
    case, checks = inspect_case(tmp_path)
    assert case is None
    failed = [c for c in checks if not c.ok]
    assert len(failed) == 1 and failed[0].subject.endswith("case_t2.nii.gz")
    assert sum(c.ok for c in checks) >= 8
