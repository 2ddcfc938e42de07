"""The independent generator: a BraTS 2023 case on an LPS 1 mm grid, with disagreements that show."""

from __future__ import annotations

import ast
import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from napari_entrust.evaluation.ground_truth import load_truth
from napari_entrust.heldout.case import SHAPE, make_heldout_case, save_heldout_case
from napari_entrust.io.loader import load_case
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    case = make_heldout_case(seed=1)
    folder = tmp_path_factory.mktemp("heldout") / case.name
    save_heldout_case(case, folder)
    return case, folder


def test_a_case_is_written_as_brats_2023_would_hold_it(saved):
    case, folder = saved
    names = sorted(p.name for p in folder.glob("*.nii.gz"))
    assert names == [f"{case.name}-{s}.nii.gz" for s in ("seg", "t1c", "t1n", "t2f", "t2w")]
    t1 = nib.load(folder / f"{case.name}-t1n.nii.gz")
    assert t1.shape == SHAPE and nib.aff2axcodes(t1.affine) == ("L", "P", "S")
    assert t1.header.get_data_dtype() == np.int16 and np.allclose(t1.header.get_zooms(), 1.0)
    assert set(np.unique(np.asarray(nib.load(folder / f"{case.name}-seg.nii.gz").dataobj))) <= {0, 1, 2, 3}
    loaded = load_case(folder)
    assert loaded.layout == "brats2023" and loaded.shape == SHAPE
    np.testing.assert_array_equal(loaded.labels, case.labels)  # ET = 3 on disk, 4 inside
    np.testing.assert_array_equal(loaded.images["flair"], case.images["flair"])
    assert (loaded.images["t1"][~ndimage.binary_dilation(case.labels > 0, iterations=80)] >= 0).all()


def test_the_truth_is_what_entrust_evaluate_reads(saved):
    case, folder = saved
    truth = load_truth(folder)
    assert truth.raters.shape == (4, *SHAPE)
    np.testing.assert_array_equal(truth.conflict, case.conflict)
    meta = json.loads((folder / "truth" / "phantom.json").read_text())
    assert meta["generator"] == "heldout" and [e["kind"] for e in meta["events"]] == [e.kind for e in case.events]
    for event in case.events:
        stored = load_case(
            {
                m: folder / f"{case.name}-{s}.nii.gz"
                for m, s in (("t1", "t1n"), ("t1ce", "t1c"), ("t2", "t2w"), ("flair", "t2f"))
            },
            labels=folder / "truth" / f"conflict_{event.kind}.nii.gz",
            label_convention="brats2021",
        )
        np.testing.assert_array_equal(stored.labels > 0, event.mask)


def test_raters_disagree_exactly_on_the_events(saved):
    case, _ = saved
    differs = (case.raters != case.raters[0]).any(0)
    assert differs.any() and not differs[~case.conflict].any()
    for event, who in zip(case.events, case.included_by):
        assert 0 < len(who) < len(case.raters), event.kind


def test_disagreements_are_seen_by_one_modality_and_have_their_sizes(saved):
    """Inside an event, each modality against the same healthy tissue nearby: only the one that sees it differs."""
    case, _ = saved
    masks = case.event_masks
    assert {"flair_only", "t1ce_focus"} <= set(masks)
    lesion = ndimage.binary_dilation(case.labels > 0, iterations=2)
    for kind, modality, (lo, hi) in (("flair_only", "flair", (2, 10)), ("t1ce_focus", "t1ce", (3, 8))):
        mask = masks[kind]
        diameter = 2 * (3 * mask.sum() / (4 * np.pi)) ** (1 / 3)
        assert lo - 1 <= diameter <= hi + 0.5, (kind, diameter)
        core = ndimage.binary_erosion(mask) if ndimage.binary_erosion(mask).sum() >= 5 else mask
        main = np.bincount(case.tissue[core]).argmax()  # the tissue the event sits in
        ring = (
            ndimage.binary_dilation(mask, iterations=8)
            & ~ndimage.binary_dilation(mask, iterations=2)
            & ~lesion
            & (case.tissue == main)
        )
        inside = core & ~lesion & (case.tissue == main)
        ratio = {m: case.images[m][inside].mean() / case.images[m][ring].mean() for m in case.images}
        assert ratio[modality] > 1.15, (kind, ratio)  # the modality that sees it
        for other in set(case.images) - {modality}:
            assert abs(ratio[other] - 1) < 0.15, (kind, other, ratio)
    assert (ndimage.binary_dilation(masks["flair_only"], iterations=2) & (case.labels > 0)).any()  # touches it


def test_same_seed_same_case_and_no_code_shared_with_the_training_phantom(saved):
    case, _ = saved
    again = make_heldout_case(seed=1)
    for m in case.images:
        np.testing.assert_array_equal(again.images[m], case.images[m])
    package = ROOT / "napari_entrust" / "heldout"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("phantom"):
                assert node.module == "phantom.raters", f"{path.name} imports {node.module}"
