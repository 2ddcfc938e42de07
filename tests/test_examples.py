"""The scripts in examples/ keep working and their outputs overlay their inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_load_and_write_back_example(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "load_and_write_back.py"), str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "whole tumour" in result.stdout
    wt = nib.load(tmp_path / "whole_tumour.nii.gz")
    t1 = nib.load(tmp_path / "case" / "phantom-00000-t1n.nii.gz")
    seg = np.asarray(nib.load(tmp_path / "case" / "phantom-00000-seg.nii.gz").dataobj)
    np.testing.assert_allclose(wt.affine, t1.affine)
    np.testing.assert_array_equal(np.asarray(wt.dataobj) > 0, seg > 0)
