"""``entrust predict`` and ``entrust train`` as a user runs them."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.checkpoint import bundled_model_path, load_checkpoint, recorded_sha256, sha256_of
from napari_entrust.cli import main
from napari_entrust.labels import to_regions


def test_bundled_model_is_recorded_and_loads_safely():
    path = bundled_model_path()
    assert path.exists(), "the bundled model must ship in resources/"
    assert recorded_sha256(path.name) == sha256_of(path)
    bundle = load_checkpoint()
    assert bundle.config.modalities == ("t1", "t1ce", "t2", "flair")
    assert path.stat().st_size < 10 * 2 ** 20
    assert bundle.training["train_config"]["iterations"] > 0 and bundle.intensity_stats["flair"]["high_mean"] > 0


def test_predict_on_the_sample_case_writes_every_output_on_its_grid(brats_case_dir, phantom2, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["predict", str(brats_case_dir), "--out", str(out), "--samples", "4", "--steps", "5"]) == 0
    names = sorted(p.name for p in out.iterdir())
    for expected in ("mask", "prob", "samples", "trustmap", "entropy", "mutual_info", "probe", "consensus",
                     "conflict", "specific_flair", "weights_t1ce"):
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
    assert "case score" in capsys.readouterr().out
    # and nothing is overwritten without --overwrite
    before = (out / "mask.nii.gz").read_bytes()
    assert main(["predict", str(brats_case_dir), "--out", str(out), "--samples", "2", "--steps", "2"]) == 2
    assert "already exists" in capsys.readouterr().err and (out / "mask.nii.gz").read_bytes() == before


@pytest.mark.parametrize("args, message", [(["--samples", "0"], "must be >= 1"), (["--steps", "-3"], "must be >= 1"),
                                           (["--probe-strength", "1.5"], "must be in [0, 1)"),
                                           (["--probe-strength", "abc"], "expected a number"),
                                           (["--device", "tpu"], "invalid choice")])
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


def test_train_rejects_bad_config_overrides(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--config", "colour=blue"]) == 2
    assert "--config expects KEY=VALUE" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--config", "conflict_branch=maybe"]) == 2
    assert "expects true or false" in capsys.readouterr().err


def test_a_1mm_volume_is_resampled_to_the_model_grid_and_back_in_chunks(phantom1):
    from napari_entrust.config import SamplingConfig
    from napari_entrust.engine import predict_case

    case = phantom1.to_case()
    pred = predict_case(case, load_checkpoint(), SamplingConfig(samples=2, steps=3, probe_steps=1), memory_mb=96)
    assert pred.mask.shape == pred.trustmap.shape == case.shape == (197, 233, 189)
    assert pred.summary["model_grid"]["shape"] == [98, 116, 94]
    wt_true, wt_pred = phantom1.labels > 0, pred.mask > 0
    assert 2 * (wt_true & wt_pred).sum() / (wt_true.sum() + wt_pred.sum()) > 0.75


def test_fine_tuning_the_bundled_model_on_a_labelled_case_folder(brats_case_dir, tmp_path, capsys):
    import torch

    out = tmp_path / "site.pt"
    args = ["train", "--out", str(out), "--phantoms", "0", "--calibration-phantoms", "0", "--cases", str(brats_case_dir),
            "--calibration-cases", str(brats_case_dir), "--init", str(bundled_model_path()), "--iterations", "2",
            "--batch-size", "2", "--calibration-iterations", "2", "--calibration-slices", "4", "--threads", "1"]
    assert main(args) == 0
    tuned, base = load_checkpoint(out), load_checkpoint()
    assert tuned.config == base.config
    assert tuned.training["init"] == str(bundled_model_path()) and len(tuned.training["history"]) >= 1
    changed = [k for k, v in base.net.state_dict().items() if not torch.equal(v, tuned.net.state_dict()[k])]
    assert changed  # the weights moved, starting from the bundled ones
    assert "wrote" in capsys.readouterr().out


def test_recalibrating_keeps_the_backbone_and_updates_checksums(tmp_path, capsys):
    import shutil

    import torch

    ckpt = tmp_path / "model.pt"
    shutil.copy(bundled_model_path(), ckpt)
    (tmp_path / "SHA256SUMS").write_text(f"{sha256_of(ckpt)}  model.pt\n")
    args = ["train", "--init", str(ckpt), "--calibrate-only", "--out", str(ckpt), "--phantoms", "1",
            "--calibration-phantoms", "1",
            "--calibration-iterations", "5", "--calibration-slices", "4", "--threads", "1", "--cache", str(tmp_path)]
    assert main(args) == 2 and "exists" in capsys.readouterr().err  # never over the model without --overwrite
    assert main([*args, "--overwrite"]) == 0
    base, recal = load_checkpoint(), load_checkpoint(ckpt)  # loads: SHA256SUMS beside it was updated
    assert all(torch.equal(v, recal.net.state_dict()[k]) for k, v in base.net.state_dict().items())
    assert not torch.equal(base.calibration.raw_slopes, recal.calibration.raw_slopes)
    assert recal.training["history"] == [] and recal.training["backbone_training"]["history"]
    assert recal.validity["fit_cases"] == {"train": 1, "reference": 1}  # refitted on the cases given
    assert main(["train", "--calibrate-only", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--init" in capsys.readouterr().err
