"""Explanations: per-modality attribution that is measured against interventions, and `entrust explain`."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.cli import main
from napari_entrust.explain.explanation import caveat, explain
from napari_entrust.explain.fusion import fuse
from napari_entrust.explain.targets import choose_target
from napari_entrust.inference.engine import predict_case
from napari_entrust.io.case import Case
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.outputs.prediction_folder import write_prediction
from napari_entrust.progress import run_to_end
from napari_entrust.review.regions import find_uncertain_regions

QUICK = SamplingConfig(samples=2, steps=2, probe_steps=1)


@pytest.fixture(scope="module")
def bundle():
    return load_checkpoint()


@pytest.fixture(scope="module")
def explained(phantom2, bundle):
    """The phantom's enhancing tumour explained (a small, well-defined target keeps this quick)."""
    case = phantom2.to_case()
    pred = predict_case(case, bundle, QUICK)
    target = pred.mask == 4
    result = run_to_end(explain(case, bundle, pred, target, channel=2, sampling=QUICK))
    return case, pred, target, result


def test_maps_are_per_modality_on_the_case_grid_and_beat_a_random_map(explained):
    case, _, target, result = explained
    for method, data in result.maps.items():
        assert data.shape == (4, *case.shape) and np.isfinite(data).all(), method
        assert np.abs(data).sum() > 0
    faith = result.faithfulness
    for method in ("gradient", "intervention", "fused"):
        assert faith[method]["deletion_auc"] < faith["random"]["deletion_auc"] - 0.2, method
        assert faith[method]["insertion_auc"] > faith["random"]["insertion_auc"] + 0.2, method
        assert faith[method]["leakage"] < faith["random"]["leakage"], method
        assert faith[method]["robustness"] > 0.5 > abs(faith["random"]["robustness"]), method
        assert sum(result.shares[method].values()) == pytest.approx(1.0)
    # the curves start at the clean score and deleting everything moves it
    assert faith["fused"]["deletion"][0] == pytest.approx(1.0)
    assert faith["fused"]["deletion"][-1] < 0.5


def test_contrast_matters_more_for_enhancing_tumour_than_for_the_whole_tumour(explained, bundle):
    """ET is defined by contrast uptake, WT by T2/FLAIR signal: T1ce's credit must follow that."""
    case, pred, _, et = explained
    wt = run_to_end(explain(case, bundle, pred, pred.mask > 0, channel=0, pipeline_effects=False))
    for method in ("gradient", "intervention", "fused"):
        assert et.shares[method]["t1ce"] > 3 * wt.shares[method]["t1ce"], method
    assert max(wt.shares["fused"], key=wt.shares["fused"].get) in ("t2", "flair")
    assert et.effects["t1ce"]["trustmap_change"] > 0.1  # without contrast, ET becomes uncertain


def test_a_modality_without_information_gets_no_intervention_credit(phantom2, bundle):
    """T1 flattened to one value inside the head: occluding it with its median changes nothing."""
    case = phantom2.to_case()
    t1 = case.images["t1"].copy()
    head = t1 != 0
    t1[head] = float(np.median(t1[head]))
    flat = Case.from_arrays({**case.images, "t1": t1}, phantom2.affine, name="flat-t1")
    pred = predict_case(flat, bundle, QUICK)
    result = run_to_end(explain(flat, bundle, pred, pred.mask == 4, channel=2, pipeline_effects=False))
    assert result.shares["intervention"]["t1"] == pytest.approx(0.0, abs=1e-6)
    assert result.effects == {}


def test_fusion_keeps_the_intervention_where_gradients_are_unstable():
    where = np.ones((2, 2, 1, 1), bool)
    gradient = np.array([1.0, 0.0, 0.0, 3.0]).reshape(where.shape)
    intervention = np.array([1.0, 0.0, 3.0, 0.0]).reshape(where.shape)
    stable = fuse(gradient, intervention, np.ones(where.shape), where)
    unstable = fuse(gradient, intervention, np.zeros(where.shape), where)
    np.testing.assert_allclose(unstable, intervention / intervention.sum())
    assert stable.ravel()[1] == 0.0  # neither source: nothing
    assert stable.ravel()[0] == pytest.approx(0.25)  # both agree (rank and mass): their common value
    assert stable.sum() == pytest.approx(1.0, abs=0.2)


def test_cli_writes_maps_and_numbers_and_refuses_bad_regions(brats_case_dir, bundle, tmp_path, capsys):
    from napari_entrust.io.loader import load_case

    case = load_case(brats_case_dir)
    pred = predict_case(case, bundle, QUICK)
    write_prediction(case, pred, tmp_path / "pred")
    _, regions_text = choose_target(pred, case.grid.voxel_volume_ml, "lesion")
    assert regions_text == "the predicted lesion"
    last = len(
        find_uncertain_regions(
            pred.trustmap,
            voxel_ml=case.grid.voxel_volume_ml,
            weights=pred.weights,
            specific=pred.specific,
            conflict=pred.conflict,
        )
    )  # not only region 1
    assert last >= 2
    out = tmp_path / "why"
    args = [
        "explain",
        str(brats_case_dir),
        "--prediction",
        str(tmp_path / "pred"),
        "--region",
        str(last),
        "--out",
        str(out),
        "--samples",
        "2",
        "--steps",
        "2",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"uncertain region {last}" in printed and "deletion AUC" in printed
    summary = json.loads((out / "explanation.json").read_text())
    assert set(summary["faithfulness"]) == {"gradient", "intervention", "fused", "random"}
    assert set(summary["effects"]) == {"t1", "t1ce", "t2", "flair"}
    img = nib.load(str(out / "attribution_fused.nii.gz"))
    reference = nib.load(str(next(brats_case_dir.glob("*_t1.nii.gz"))))
    assert img.shape == (*reference.shape, 4) and np.allclose(img.affine, reference.affine)
    target = np.asarray(nib.load(str(out / "target.nii.gz")).dataobj)
    assert target.sum() == summary["target_voxels"]
    assert main(args) == 2 and "already exists" in capsys.readouterr().err  # nothing overwritten
    assert main([*args[:-6], "--region", "999", "--out", str(tmp_path / "x")]) == 2
    assert "region 999 does not exist" in capsys.readouterr().err


def test_a_region_the_inputs_do_not_drive_is_called_uninformative(explained, bundle):
    """Healthy tissue far from the lesion: no input moves the fused head there, and the summary says so."""
    case, pred, _, _ = explained
    from scipy import ndimage

    head = ndimage.binary_erosion(case.images["t1"] > 0, iterations=4)
    far = np.argwhere(head & (ndimage.distance_transform_edt(pred.mask == 0) > 15))  # > 30 mm from the lesion
    x, y, z = far[len(far) // 2]
    target = np.zeros(case.shape, bool)
    target[x - 2 : x + 2, y - 2 : y + 2, z - 2 : z + 2] = True
    result = run_to_end(explain(case, bundle, pred, target, channel=0, pipeline_effects=False))
    assert not result.summary["score"]["informative"]
    assert "say little" in caveat(result.summary)
    assert caveat({"score": {"informative": True}}) is None


def test_the_viewer_s_quicker_explanation_gives_the_same_maps_and_the_fused_map_s_faithfulness(explained, bundle):
    case, pred, target, full = explained
    quick = run_to_end(
        explain(case, bundle, pred, target, channel=2, sampling=QUICK, pipeline_effects=False, measure_all_maps=False)
    )
    for method, values in full.maps.items():
        np.testing.assert_array_equal(quick.maps[method], values)
    assert set(quick.faithfulness) == {"fused", "random"}
    assert quick.faithfulness["fused"]["deletion_auc"] == pytest.approx(full.faithfulness["fused"]["deletion_auc"])
    assert quick.faithfulness["fused"]["robustness"] is None and full.faithfulness["fused"]["robustness"] is not None
    assert quick.summary["parameters"]["maps_measured"] == ["fused", "random"]
