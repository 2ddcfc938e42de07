"""``entrust train`` as a user runs it: overrides checked, fine-tuning, recalibration."""

from __future__ import annotations

from napari_entrust.cli import main
from napari_entrust.io.files import sha256_of
from napari_entrust.model.checkpoint import bundled_model_path, load_checkpoint


def test_train_rejects_bad_config_overrides(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--config", "colour=blue"]) == 2
    assert "--config expects KEY=VALUE" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--config", "conflict_branch=maybe"]) == 2
    assert "expects true or false" in capsys.readouterr().err


def test_fine_tuning_the_bundled_model_on_a_labelled_case_folder(brats_case_dir, tmp_path, capsys):
    import torch

    out = tmp_path / "site.pt"
    args = [
        "train",
        "--out",
        str(out),
        "--phantoms",
        "0",
        "--calibration-phantoms",
        "0",
        "--cases",
        str(brats_case_dir),
        "--calibration-cases",
        str(brats_case_dir),
        "--init",
        str(bundled_model_path()),
        "--iterations",
        "2",
        "--batch-size",
        "2",
        "--calibration-iterations",
        "2",
        "--calibration-slices",
        "4",
        "--threads",
        "1",
    ]
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
    args = [
        "train",
        "--init",
        str(ckpt),
        "--calibrate-only",
        "--out",
        str(ckpt),
        "--phantoms",
        "1",
        "--calibration-phantoms",
        "1",
        "--calibration-iterations",
        "5",
        "--calibration-slices",
        "4",
        "--threads",
        "1",
        "--cache",
        str(tmp_path),
    ]
    assert main(args) == 2 and "exists" in capsys.readouterr().err  # never over the model without --overwrite
    assert main([*args, "--overwrite"]) == 0
    base, recal = load_checkpoint(), load_checkpoint(ckpt)  # loads: SHA256SUMS beside it was updated
    assert all(torch.equal(v, recal.net.state_dict()[k]) for k, v in base.net.state_dict().items())
    assert not torch.equal(base.calibration.raw_slopes, recal.calibration.raw_slopes)
    assert recal.training["history"] == [] and recal.training["backbone_training"]["history"]
    assert recal.validity["fit_cases"] == {"train": 1, "reference": 1}  # refitted on the cases given
    assert main(["train", "--calibrate-only", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--init" in capsys.readouterr().err


def test_fine_tuning_can_add_a_conflict_head_but_not_change_the_architecture(tmp_path, capsys):
    out = tmp_path / "cf.pt"
    common = ["train", "--init", str(bundled_model_path()), "--out", str(out), "--threads", "1"]
    assert main([*common, "--config", "encoder_channels=4,8"]) == 2
    assert "cannot change the architecture" in capsys.readouterr().err
    small = ["--phantoms", "1", "--calibration-phantoms", "1", "--cache", str(tmp_path), "--iterations", "3"]
    small += ["--batch-size", "4", "--calibration-iterations", "2", "--calibration-slices", "4"]
    assert main([*common, *small, "--config", "conflict_target_weight=0.5"]) == 0
    tuned = load_checkpoint(out)
    assert tuned.config.conflict_head and tuned.net.enfuse.conflict_head is not None
    assert all("conflict" in entry for entry in tuned.training["history"])  # its loss is logged
