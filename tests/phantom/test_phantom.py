"""The phantom: rendered contrasts, labels, raters, conflict events, determinism, saving."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from napari_entrust.errors import OutputError
from napari_entrust.io.labels import ED, ET, NCR
from napari_entrust.io.loader import load_case
from napari_entrust.io.modalities import MODALITIES
from napari_entrust.phantom.phantom import make_phantom
from napari_entrust.phantom.writing import save_phantom

# DESIGN.md §4 "Expected ratios to WM" (T1w / T1ce / T2 / FLAIR)


def _pure(ph, tissue, threshold=0.95):
    return (ph.fractions[tissue] >= threshold) & ph.brain


def _near_lesion_wm(ph, max_mm=30.0):
    """Pure white matter around the lesion, so a smooth bias field hardly differs between the two."""
    dist = ndimage.distance_transform_edt(ph.labels == 0) * ph.spacing
    return (ph.fractions["healthy_wm"] >= 0.95) & (ph.labels == 0) & (dist > 4) & (dist < max_mm) & ~ph.conflict


def _ratio(ph, mask, modality):
    ref = ph.images[modality][_near_lesion_wm(ph)].mean()
    return float(ph.images[modality][mask].mean() / ref)


def test_rendered_oedema_is_t1_iso_and_bright_on_t2_and_flair(phantom2):
    oedema = _pure(phantom2, "oedema")
    assert oedema.sum() > 50
    assert _ratio(phantom2, oedema, "t1") == pytest.approx(1.0, abs=0.05)
    assert _ratio(phantom2, oedema, "flair") > 2.0
    assert _ratio(phantom2, oedema, "t2") > 2.0


def test_rendered_enhancing_tumour_is_brighter_on_t1ce_than_on_t1(phantom1):
    et = phantom1.fractions["enhancing"] >= 0.8
    assert et.sum() > 50
    t1, t1ce = _ratio(phantom1, et, "t1"), _ratio(phantom1, et, "t1ce")
    assert t1ce > 1.3 and t1 < 0.9 and t1ce > 1.5 * t1


def test_rendered_csf_is_dark_on_flair_and_necrosis_dark_on_t1(phantom1):
    csf = _pure(phantom1, "healthy_csf") & (phantom1.labels == 0)
    assert csf.sum() > 1000
    assert _ratio(phantom1, csf, "flair") < 0.25
    assert _ratio(phantom1, csf, "t2") > 2.5
    necrosis = _pure(phantom1, "necrosis", 0.9)
    assert _ratio(phantom1, necrosis, "t1") < 0.6


def test_rician_noise_level_and_skull_stripped_background(phantom2):
    wm = _near_lesion_wm(phantom2)
    t1 = phantom2.images["t1"][wm]
    # ~3 % noise plus a little partial-volume and bias spread; never a noiseless image
    assert 0.02 < t1.std() / t1.mean() < 0.08
    for m in MODALITIES:
        assert np.all(phantom2.images[m][~phantom2.brain] == 0)
        assert np.all(phantom2.images[m] >= 0)  # magnitude (Rician) images are never negative


def test_labels_are_nested_brats_labels(phantom2):
    values = set(np.unique(phantom2.labels).tolist())
    assert values == {0, NCR, ED, ET}
    assert not np.any((phantom2.labels > 0) & ~phantom2.brain)


def test_raters_differ_only_inside_conflict_regions(phantom2_misregistered):
    ph = phantom2_misregistered
    assert ph.raters.shape[0] == 4
    differ = (ph.raters != ph.raters[:1]).any(axis=0)
    assert differ.any()
    assert not np.any(differ & ~ph.conflict)
    # outside conflict every rater gives the consensus label map
    assert np.array_equal(
        ph.raters[:, ~ph.conflict], np.broadcast_to(ph.labels[~ph.conflict], ph.raters[:, ~ph.conflict].shape)
    )
    kinds = {e.kind for e in ph.events}
    assert kinds == {"flair_only", "t1ce_focus", "misregistration"}
    for event in ph.events:  # every event is included by some raters and excluded by others
        assert 0 < len(event.included_by) < len(ph.raters)


def test_conflict_mask_is_non_empty_and_next_to_the_lesion(phantom2, phantom2_misregistered):
    for ph in (phantom2, phantom2_misregistered):
        assert ph.conflict.sum() > 0
        dist_mm = ndimage.distance_transform_edt(ph.labels == 0) * ph.spacing
        assert dist_mm[ph.conflict].max() <= 15.0
        labelled, n = ndimage.label(ph.conflict)
        for i in range(1, n + 1):  # each conflict region touches or nearly touches the lesion
            assert dist_mm[labelled == i].min() <= 8.0


def test_conflict_events_are_seen_by_some_modalities_but_not_all(phantom2):
    ph = phantom2
    vis = dict(zip(MODALITIES, ph.visibility))
    # away from the lesion border, where the PSF spills the lesion's own signal into neighbours
    away = ndimage.distance_transform_edt(ph.labels == 0) * ph.spacing >= 4.0
    flair_only = (ph.fractions["flair_only"] >= 0.7) & away
    assert vis["flair"][flair_only].mean() > 0.8
    for m in ("t1", "t1ce", "t2"):
        assert vis[m][flair_only].mean() < 0.05
    assert flair_only.sum() >= 5
    focus = (ph.fractions["t1ce_focus"] >= 0.5) & away
    assert vis["t1ce"][focus].mean() > 0.5
    for m in ("t1", "t2", "flair"):
        assert vis[m][focus].mean() < 0.05
    # the lesion itself: oedema replacing white matter is invisible on T1 (T1-iso) but not on T2/FLAIR
    oedema = (ph.fractions["oedema"] >= 0.95) & (ph.fractions["healthy_wm"] >= 0.9)
    assert oedema.sum() > 20
    assert vis["t1"][oedema].mean() < 0.2 and vis["flair"][oedema].mean() > 0.9 and vis["t2"][oedema].mean() > 0.9


def test_misregistration_moves_one_modality_only(phantom2, phantom2_misregistered):
    event = next(e for e in phantom2_misregistered.events if e.kind == "misregistration")
    assert event.modality in ("t2", "flair")
    for m in MODALITIES:
        same = np.array_equal(phantom2.images[m], phantom2_misregistered.images[m])
        assert same == (m != event.modality)


def test_same_seed_same_case_and_other_seed_other_case(phantom2):
    again = make_phantom(seed=11, spacing=2, misregistration=False)
    for m in MODALITIES:
        assert np.array_equal(again.images[m], phantom2.images[m])
    assert np.array_equal(again.raters, phantom2.raters)
    other = make_phantom(seed=12, spacing=2, misregistration=False)
    assert not np.array_equal(other.labels, phantom2.labels)


def test_spacing_changes_resolution_not_the_case(phantom1, phantom2):
    assert phantom1.images["t1"].shape == (197, 233, 189)
    assert phantom2.images["t1"].shape == (98, 116, 94)
    wt1 = (phantom1.labels > 0).sum() * phantom1.voxel_volume_ml
    wt2 = (phantom2.labels > 0).sum() * phantom2.voxel_volume_ml
    assert wt2 == pytest.approx(wt1, rel=0.15)
    c1 = np.array(ndimage.center_of_mass(phantom1.labels > 0)) * 1.0 + phantom1.affine[:3, 3]
    c2 = np.array(ndimage.center_of_mass(phantom2.labels > 0)) * 2.0 + phantom2.affine[:3, 3]
    assert np.linalg.norm(c1 - c2) < 3.0
    assert [e.included_by for e in phantom1.events] == [e.included_by for e in phantom2.events]


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="spacing"):
        make_phantom(seed=0, spacing=1.5)
    with pytest.raises(ValueError, match="n_raters"):
        make_phantom(seed=0, n_raters=0)


@pytest.mark.parametrize("fmt, et_value", [("brats2021", 4), ("brats2023", 3), ("msd", 3)])
def test_saved_case_loads_back_identically(tmp_path, phantom2, fmt, et_value):
    paths = save_phantom(phantom2, tmp_path, fmt)
    source = paths["image"] if fmt == "msd" else tmp_path
    case = load_case(source)
    assert case.layout == fmt
    for m in MODALITIES:
        np.testing.assert_array_equal(case.images[m], phantom2.images[m])
    np.testing.assert_array_equal(case.labels, phantom2.labels)
    np.testing.assert_allclose(case.affine, phantom2.affine)
    import nibabel as nib

    seg = np.asarray(nib.load(paths["seg"]).dataobj)
    assert et_value in np.unique(seg)
    rater = np.asarray(nib.load(paths["rater1"]).dataobj)
    assert set(np.unique(rater)) <= {0, 1, 2, et_value}
    meta = json.loads(paths["metadata"].read_text())
    assert meta["seed"] == 11 and meta["visibility_order"] == list(MODALITIES)
    vis = np.asarray(nib.load(paths["visibility"]).dataobj)
    assert vis.shape == (*phantom2.labels.shape, 4)


def test_saving_refuses_to_overwrite_and_leaves_files_intact(tmp_path, phantom2):
    paths = save_phantom(phantom2, tmp_path, "brats2021")
    before = {k: p.read_bytes() for k, p in paths.items()}
    other = make_phantom(seed=12, spacing=2)
    with pytest.raises(OutputError, match="already exists"):
        save_phantom(other, tmp_path, "brats2021")  # different name, same truth/ files
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    save_phantom(phantom2, tmp_path, "brats2021", overwrite=True)
    assert not list(tmp_path.rglob(".*tmp*"))
