"""Loading cases in every layout, keeping geometry, and clear errors for every kind of bad input."""

from __future__ import annotations


import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from conftest import small_volume, write_brats_folder, write_nifti
from napari_entrust import geometry
from napari_entrust.errors import InputError, OutputError
from napari_entrust.io import ResampledWarning, inspect_case, load_case
from napari_entrust.modalities import MODALITIES
from napari_entrust.nifti import save_nifti
from napari_entrust.normalize import fill_holes, head_mask, normalize_case


def _rotation_z(deg):
    a = np.deg2rad(deg)
    r = np.eye(4)
    r[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return r


AFFINES = {
    "RAS": np.diag([1.0, 1.0, 1.0, 1.0]) + np.array([[0, 0, 0, -10], [0, 0, 0, -20], [0, 0, 0, 5], [0, 0, 0, 0]]),
    "LPS": np.array([[-1.0, 0, 0, 90], [0, -1.0, 0, 120], [0, 0, 1.0, -70], [0, 0, 0, 1]]),
    "anisotropic LAS": np.array([[-0.9, 0, 0, 50], [0, 0.9, 0, -60], [0, 0, 3.0, -20], [0, 0, 0, 1]]),
    "oblique": _rotation_z(17) @ np.array([[1.2, 0, 0, -30], [0, 1.2, 0, -40], [0, 0, 2.5, 10], [0, 0, 0, 1]]),
    "axes permuted (SAR)": np.array([[0, 0, 1.0, -5], [0, 1.0, 0, -7], [1.0, 0, 0, -9], [0, 0, 0, 1]]),
}


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


# -- bad input: every case names the file and the problem ------------------------------------------

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
        load_case({"t1": paths["t1"], "t1n": paths["t1"], "t1ce": paths["t1ce"], "t2": paths["t2"], "flair": paths["flair"]})


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
    write_nifti(paths["t2"], np.ones(shape, np.float32) * np.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1)), np.eye(4))
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


@pytest.mark.parametrize("values, match", [((0, 1, 2, 5), r"unexpected label values \[5\]"),
                                           ((0, 3, 4), r"unexpected label values \[3\]"),
                                           ((0, -1), r"unexpected label values \[-1\]")])
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


# -- writers ------------------------------------------------------------------------------------

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


# -- normalisation -------------------------------------------------------------------------------

def test_normalisation_is_robust_inside_the_head_and_leaves_images_alone(phantom2):
    case = phantom2.to_case()
    raw = {m: v.copy() for m, v in case.images.items()}
    normed, stats = normalize_case(case)
    mask = head_mask(case.images)
    overlap = (mask & phantom2.brain).sum() / (mask | phantom2.brain).sum()
    assert overlap > 0.97  # the head mask of skull-stripped data is the brain
    for m in MODALITIES:
        inside = normed[m][mask]
        assert np.percentile(inside, 0.5) == pytest.approx(0.0, abs=1e-6)
        assert np.percentile(inside, 99.5) == pytest.approx(1.0, abs=1e-6)
        assert np.all(normed[m][~mask] == 0)
        np.testing.assert_array_equal(case.images[m], raw[m])
        assert stats[m].high > stats[m].low


def test_head_mask_fills_holes_as_scipy_does():
    rng = np.random.default_rng(1)
    masks = [rng.random((20, 24, 18)) < rng.uniform(0.3, 0.8) for _ in range(10)]
    shell = np.zeros((20, 20, 20), bool)
    shell[3:17, 3:17, 3:17] = True
    shell[6:14, 6:14, 6:14] = False  # a closed cavity: filled
    open_cut = shell.copy()
    open_cut[9:11, 9:11, :10] = False  # a channel to the border: not a hole
    for mask in [*masks, shell, open_cut]:
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    assert fill_holes(shell)[10, 10, 10] and not fill_holes(open_cut)[10, 10, 5]


def test_normalisation_ignores_a_noisy_background():
    rng = np.random.default_rng(0)
    head = np.zeros((40, 40, 40), np.float32)
    head[8:32, 8:32, 8:32] = 1000
    noisy = head + rng.rayleigh(15, head.shape).astype(np.float32)
    mask = head_mask({"t1": noisy})
    assert mask[10:30, 10:30, 10:30].all() and not mask[:5].any()
