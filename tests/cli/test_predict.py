"""``entrust predict`` as a user runs it: every output on the input's grid, clear errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.cli import main
from napari_entrust.io.files import sha256_of
from napari_entrust.io.labels import to_regions
from napari_entrust.model.checkpoint import bundled_model_path


def test_predict_on_the_sample_case_writes_every_output_on_its_grid(brats_case_dir, phantom2, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["predict", str(brats_case_dir), "--out", str(out), "--samples", "4", "--steps", "5"]) == 0
    names = sorted(p.name for p in out.iterdir())
    for expected in (
        "mask",
        "prob",
        "samples",
        "trustmap",
        "entropy",
        "mutual_info",
        "probe",
        "consensus",
        "conflict",
        "specific_flair",
        "weights_t1ce",
    ):
        assert f"{expected}.nii.gz" in names
    ref = nib.load(next(brats_case_dir.glob("*_t1.nii.gz")))
    mask = nib.load(out / "mask.nii.gz")
    np.testing.assert_allclose(mask.affine, ref.affine)
    assert mask.shape == ref.shape and nib.load(out / "samples.nii.gz").shape == (*ref.shape, 4)
    predicted = np.asarray(mask.dataobj)
    assert set(np.unique(predicted)) <= {0, 1, 2, 4}
    wt_true, wt_pred = to_regions(phantom2.labels)[0], predicted > 0
    assert 2 * (wt_true & wt_pred).sum() / (wt_true.sum() + wt_pred.sum()) > 0.8  # it segments the tumour
    trust = np.asarray(nib.load(out / "trustmap.nii.gz").dataobj)
    assert 0 <= trust.min() and trust.max() <= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["sha256"] == sha256_of(bundled_model_path())
    assert summary["parameters"]["samples"] == 4 and summary["device"] == "cpu"
    assert summary["volumes_ml"]["WT"]["mean"] > 0 and "total_s" in summary["timings_s"]
    assert summary["dropped_without_core_ml"] >= 0.0  # what the mask left out is on record
    assert "case score" in capsys.readouterr().out
    # and nothing is overwritten without --overwrite
    before = (out / "mask.nii.gz").read_bytes()
    assert main(["predict", str(brats_case_dir), "--out", str(out), "--samples", "2", "--steps", "2"]) == 2
    assert "already exists" in capsys.readouterr().err and (out / "mask.nii.gz").read_bytes() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--samples", "0"], "must be >= 1"),
        (["--steps", "-3"], "must be >= 1"),
        (["--probe-strength", "1.5"], "must be in [0, 1)"),
        (["--probe-strength", "abc"], "expected a number"),
        (["--device", "tpu"], "invalid choice"),
    ],
)
def test_predict_rejects_nonsense_values(brats_case_dir, tmp_path, args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(brats_case_dir), "--out", str(tmp_path / "o"), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_predict_reports_a_missing_model_and_a_bad_case(brats_case_dir, tmp_path, capsys):
    assert main(["predict", str(brats_case_dir), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "x.pt")]) == 2
    assert "model file does not exist" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
