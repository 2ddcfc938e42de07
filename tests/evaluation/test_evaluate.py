"""`entrust evaluate`: predictions against label files, case folders and phantom raters."""

import json
import math

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.cli import main
from napari_entrust.io.labels import to_regions
from napari_entrust.io.loader import load_case
from napari_entrust.outputs.prediction_folder import write_arrays


def _reorient_files(folder, axcodes=("L", "P", "S")):
    """Rewrite every NIfTI in ``folder`` in another voxel order (same world geometry)."""
    for path in folder.glob("*.nii.gz"):
        img = nib.load(str(path))
        target = nib.orientations.axcodes2ornt(axcodes)
        img = img.as_reoriented(nib.orientations.ornt_transform(nib.orientations.io_orientation(img.affine), target))
        nib.save(img, str(path))


@pytest.fixture
def perfect_prediction(brats_case_dir, phantom2, tmp_path):
    """The phantom's own label map as the mask, raters as the hypotheses, certain everywhere."""
    case = load_case(brats_case_dir)
    out = tmp_path / "perfect"
    write_arrays(
        case,
        {
            "mask": phantom2.labels,
            "prob": to_regions(phantom2.labels).astype(np.float32),
            "samples": phantom2.raters,
            "trustmap": np.zeros(case.shape, np.float32),
        },
        out,
        {},
    )
    return out


def test_a_perfect_prediction_scores_perfectly_in_any_voxel_order(perfect_prediction, brats_case_dir, tmp_path):
    _reorient_files(perfect_prediction)  # LPS files against an RAS case: compared in world space
    assert nib.aff2axcodes(nib.load(str(perfect_prediction / "mask.nii.gz")).affine) == ("L", "P", "S")
    out = tmp_path / "eval"
    assert main(["evaluate", str(perfect_prediction), str(brats_case_dir), "--out", str(out)]) == 0
    result = json.loads((out / "evaluation.json").read_text())
    row = result["per_case"][0]
    for r in ("WT", "TC", "ET"):
        assert row[f"dice_{r}"] == 1.0 and row[f"hd95_{r}"] == 0.0
    assert row["ece"] == pytest.approx(0.0, abs=1e-6) and row["brier_roi"] == 0.0
    assert row["ged"] == pytest.approx(0.0, abs=1e-9) and row["hm_iou"] == pytest.approx(1.0)
    assert row["error_auroc"] is None  # no errors: undefined, written as null, not a made-up number
    assert row["qu_brats"] == pytest.approx(1.0)
    lines = (out / "cases.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("case,prediction,dice_WT")
    for png in ("reliability.png", "uncertainty_error.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluating_real_predictions_of_a_folder_of_cases(brats_case_dir, tmp_path, capsys):
    preds, truths = tmp_path / "preds", tmp_path / "truths"
    truths.mkdir()
    (truths / "phantom-00011").symlink_to(brats_case_dir, target_is_directory=True)
    assert main(["predict", str(brats_case_dir), "--out", str(preds / "phantom-00011"), "-k", "2", "-s", "2"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(preds), str(truths)]) == 0
    printed = capsys.readouterr().out
    assert "| phantom-00011 |" in printed and "mean of 1" in printed
    row = json.loads((preds / "evaluation" / "evaluation.json").read_text())["per_case"][0]
    assert row["dice_WT"] > 0.8
    assert 0.0 <= row["ece_roi"] <= 1.0 and 0.0 <= row["conflict_auroc"] <= 1.0
    assert row["ged"] >= 0.0 and 0.0 < row["hm_iou"] <= 1.0
    assert math.isfinite(row["case_score"])
    # the table refuses to overwrite an earlier evaluation unless asked
    assert main(["evaluate", str(preds), str(truths)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_evaluate_names_the_file_and_the_problem(perfect_prediction, brats_case_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), str(brats_case_dir)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "mask.nii.gz" in err

    # a label file on another grid
    other = tmp_path / "other_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.uint8), np.eye(4)), str(other))
    assert main(["evaluate", str(perfect_prediction), str(other), "--out", str(tmp_path / "e1")]) == 2
    err = capsys.readouterr().err
    assert "mask.nii.gz" in err and "same grid" in err

    # NaN probabilities
    prob = perfect_prediction / "prob.nii.gz"
    img = nib.load(str(prob))
    data = np.asarray(img.dataobj).astype(np.float32)
    data[0, 0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), str(prob))  # float32: a stored uint16 cannot hold NaN
    assert main(["evaluate", str(perfect_prediction), str(brats_case_dir), "--out", str(tmp_path / "e2")]) == 2
    err = capsys.readouterr().err
    assert "prob.nii.gz" in err and "NaN" in err
