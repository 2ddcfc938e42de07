"""``entrust sample`` and ``entrust info`` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.cli import main
from tests.helpers import write_nifti


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "case"
    assert main(["sample", str(out), "--seed", "3", "--spacing", "2"]) == 0
    return out


def test_sample_writes_a_case_anyone_can_open(sample_dir):
    names = sorted(p.name for p in sample_dir.glob("*.nii.gz"))
    assert names == [f"phantom-00003_{m}.nii.gz" for m in ("flair", "seg", "t1", "t1ce", "t2")]
    img = nib.load(sample_dir / "phantom-00003_t1.nii.gz")
    assert img.shape == (98, 116, 94) and img.header.get_zooms() == (2.0, 2.0, 2.0)
    assert int(img.header["sform_code"]) > 0 and int(img.header["qform_code"]) > 0
    meta = json.loads((sample_dir / "truth" / "phantom.json").read_text())
    assert meta["seed"] == 3 and meta["conflict_ml"] > 0
    assert (sample_dir / "truth" / "rater4.nii.gz").exists()


def test_info_reports_geometry_and_checks(sample_dir, capsys):
    assert main(["info", str(sample_dir)]) == 0
    out = capsys.readouterr().out
    assert "98x116x94" in out and "RAS" in out and "all checks passed" in out
    for m in ("t1", "t1ce", "t2", "flair"):
        assert f"phantom-00003_{m}.nii.gz" in out
    assert main(["info", str(sample_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["labels"]["volumes_ml"]["oedema"] > 0
    assert report["modalities"]["flair"]["spacing_mm"] == [2.0, 2.0, 2.0]


def test_info_with_explicit_modalities(sample_dir, capsys):
    args = ["info"] + sum(
        (
            ["--modality", f"{m}={sample_dir / f'phantom-00003_{s}.nii.gz'}"]
            for m, s in (("t1n", "t1"), ("t1c", "t1ce"), ("t2w", "t2"), ("t2f", "flair"))
        ),
        [],
    )
    assert main(args) == 0
    assert "all checks passed" in capsys.readouterr().out


def test_info_on_a_bad_case_lists_the_failed_check_and_exits_1(sample_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(sample_dir, bad)
    data = np.asarray(nib.load(bad / "phantom-00003_t2.nii.gz").dataobj).copy()
    data[10, 10, 10] = np.nan
    write_nifti(bad / "phantom-00003_t2.nii.gz", data, nib.load(bad / "phantom-00003_t1.nii.gz").affine)
    assert main(["info", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL]" in out and "phantom-00003_t2.nii.gz" in out and "NaN/Inf" in out
    assert "[ok  ]" in out  # the checks that passed are listed too


def test_errors_are_one_clear_line_not_a_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().out
    assert main(["info"]) == 2
    assert "no case given" in capsys.readouterr().err


def test_sample_refuses_to_overwrite(sample_dir, capsys):
    before = (sample_dir / "phantom-00003_t1.nii.gz").read_bytes()
    assert main(["sample", str(sample_dir), "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert (sample_dir / "phantom-00003_t1.nii.gz").read_bytes() == before


@pytest.mark.parametrize("args", [["--spacing", "0"], ["--seed", "-1"], ["--raters", "0"], ["--format", "nrrd"]])
def test_sample_rejects_nonsense_options(tmp_path, args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(tmp_path / "x"), *args])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_console_script_is_installed(tmp_path):
    entrust = Path(sys.executable).with_name("entrust")
    cmd = [str(entrust)] if entrust.exists() else [sys.executable, "-m", "napari_entrust.cli"]
    result = subprocess.run(
        [*cmd, "sample", str(tmp_path / "c"), "--format", "brats2023", "--seed", "1"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c" / "phantom-00001-t2f.nii.gz").exists()
    result = subprocess.run([*cmd, "info", str(tmp_path / "c")], capture_output=True, text=True)
    assert result.returncode == 0 and "brats2023" in result.stdout


def test_sample_writes_a_case_of_the_independent_generator(tmp_path, capsys):
    out = tmp_path / "heldout"
    assert main(["sample", str(out), "--generator", "heldout", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "held-out case BraTS-GLI-00002-000" in printed and "conflict: t1ce_focus" in printed
    img = nib.load(out / "BraTS-GLI-00002-000-t2f.nii.gz")
    assert img.shape == (240, 240, 155) and nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert main(["info", str(out)]) == 0 and "(layout brats2023)" in capsys.readouterr().out
    assert main(["sample", str(tmp_path / "x"), "--generator", "heldout", "--format", "msd"]) == 2
    assert "for the phantom" in capsys.readouterr().err


def test_sample_writes_a_randomised_training_case_that_loads(tmp_path, capsys):
    """What the model trains on can be looked at: another protocol than the standard case's."""
    standard, randomised = tmp_path / "standard", tmp_path / "randomised"
    assert main(["sample", str(standard), "--seed", "4"]) == 0
    assert main(["sample", str(randomised), "--seed", "4", "--domain", "randomised"]) == 0
    assert "phantom-randomised-00004" in capsys.readouterr().out
    meta = json.loads((randomised / "truth" / "phantom.json").read_text())
    assert meta["domain"] == "randomised"
    a, b = (np.asarray(nib.load(next(d.glob("*_t2.nii.gz"))).dataobj) for d in (standard, randomised))
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert main(["info", str(randomised)]) == 0
    assert main(["sample", str(tmp_path / "y"), "--generator", "heldout", "--domain", "randomised"]) == 2
    assert "for the phantom" in capsys.readouterr().err
